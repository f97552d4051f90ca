import { type AwsScope, DEFAULT_SCOPE, scheduleArn } from "./arn";
import type { RetryPolicy } from "./eventbridge";
import { type AsyncInvocation, FunctionNotFoundError, type LambdaAsync } from "./lambda-async";
import { type MessageSource, type Queues, SOURCE_ATTRIBUTE } from "./queues";

/**
 * EventBridge Scheduler for the twin: each enabled schedule fires on its timetable and invokes
 * its function asynchronously (Scheduler's Lambda target is an Event invoke). Scheduler's retry
 * policy and dead-letter queue cover failures to hand the input to Lambda; a function that
 * fails is retried by Lambda and recorded on its own on-failure destination (lambda-async.ts).
 *
 * A target without `input` gets `{}`. AWS documents only that it "delivers a default
 * notification", without a shape for Lambda; SST's CronV2 always sets `input` (`{}` when the
 * cron has no `event`), so the case only arises for hand-written schedules.
 */

export interface ScheduleTarget {
  /** The function's ARN. */
  arn: string;
  /** JSON text; the function receives it parsed. */
  input?: string;
  retryPolicy?: RetryPolicy;
  /** ARN of the SQS queue of the target's deadLetterConfig. */
  deadLetterArn?: string;
}

export interface ScheduleSpec {
  name: string;
  groupName?: string;
  /** `rate(…)`, `cron(…)` or `at(…)`. */
  scheduleExpression: string;
  /** IANA name; UTC when absent (scheduleExpressionTimezone). */
  timezone?: string;
  state?: "ENABLED" | "DISABLED";
  target: ScheduleTarget;
}

export interface SchedulerOptions {
  lambda: Pick<LambdaAsync, "invokeAsync" | "idle">;
  queues: Pick<Queues, "send">;
  schedules?: ScheduleSpec[];
  /** False: never fire on a timetable, only through `fire()` (tests). Default true. */
  timers?: boolean;
  scope?: AwsScope;
  /** First wait between delivery attempts, doubled each time up to `retryMaxDelayMs`. Default 200 ms. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Runs kept for `runs()`. Default 1000. */
  logLimit?: number;
  now?: () => number;
}

export interface ScheduleRun {
  schedule: string;
  trigger: "timer" | "manual";
  /** When the timetable said to fire (the fire time for a manual run). */
  scheduledTime: string;
  /** `dropped`: delivery gave up and the target has no dead-letter queue. */
  delivery: "pending" | "retrying" | "delivered" | "dead-lettered" | "dropped" | "stopped";
  deliveryAttempts: number;
  errorCode?: string;
  errorMessage?: string;
  deadLetter?: { queue: string; messageId: string };
  /** Lambda's request id, and how the invocation ended (after Lambda's own retries). */
  requestId?: string;
  invocation?: AsyncInvocation;
  finishedAt?: string;
}

export interface ScheduleInfo {
  name: string;
  arn: string;
  expression: string;
  timezone: string;
  state: "ENABLED" | "DISABLED";
  /** Next timed fire, when timers run and the schedule is enabled. */
  nextFireAt?: string;
}

export type ParsedSchedule =
  | { kind: "rate"; everyMs: number }
  | { kind: "cron"; minutes: number[]; hours: number[]; months: Set<number>; years: Set<number>; day: (y: number, m: number, d: number) => boolean }
  | { kind: "at"; wall: [number, number, number, number, number, number] };

export class ScheduleExpressionError extends Error {
  override readonly name = "ValidationException";
}

const RATE_UNITS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/** Parses a Scheduler expression; throws ScheduleExpressionError saying what is wrong. */
export function parseScheduleExpression(expression: string): ParsedSchedule {
  const text = expression.trim();
  const rate = /^rate\((.*)\)$/.exec(text);
  if (rate) return parseRate(rate[1]!.trim(), expression);
  const cron = /^cron\((.*)\)$/.exec(text);
  if (cron) return parseCron(cron[1]!.trim(), expression);
  const at = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/.exec(text);
  if (at) return { kind: "at", wall: at.slice(1).map(Number) as [number, number, number, number, number, number] };
  throw new ScheduleExpressionError(`${expression}: not rate(value unit), cron(fields) or at(yyyy-mm-ddThh:mm:ss)`);
}

function parseRate(body: string, expression: string): ParsedSchedule {
  const match = /^(\d+)\s+(minute|minutes|hour|hours|day|days)$/.exec(body);
  if (!match) throw new ScheduleExpressionError(`${expression}: a rate is "rate(<positive integer> minute(s)|hour(s)|day(s))"`);
  const value = Number(match[1]);
  const unit = match[2]!;
  if (value < 1) throw new ScheduleExpressionError(`${expression}: the value must be positive`);
  // AWS refuses `rate(1 minutes)` and `rate(5 minute)`.
  if ((value === 1) !== !unit.endsWith("s")) throw new ScheduleExpressionError(`${expression}: use the singular unit for 1 and the plural otherwise`);
  return { kind: "rate", everyMs: value * RATE_UNITS[unit.replace(/s$/, "")]! };
}

function parseCron(body: string, expression: string): ParsedSchedule {
  const fields = body.split(/\s+/);
  if (fields.length !== 6)
    throw new ScheduleExpressionError(`${expression}: cron takes 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`);
  const [minutes, hours, dom, month, dow, year] = fields as [string, string, string, string, string, string];
  const fail = (message: string): never => {
    throw new ScheduleExpressionError(`${expression}: ${message}`);
  };
  if ((dom === "?") === (dow === "?")) fail("exactly one of day-of-month and day-of-week must be ?");
  const sorted = (values: Set<number>) => [...values].sort((a, b) => a - b);
  return {
    kind: "cron",
    minutes: sorted(parseField(minutes, 0, 59, [], "minutes", fail)),
    hours: sorted(parseField(hours, 0, 23, [], "hours", fail)),
    months: parseField(month, 1, 12, MONTHS, "month", fail),
    years: parseField(year, 1970, 2199, [], "year", fail),
    day: dom === "?" ? parseDayOfWeek(dow, fail) : parseDayOfMonth(dom, fail),
  };
}

/** `*`, values, names, ranges and steps (`*\/5`, `0/15`, `10-40/10`), comma-separated. */
function parseField(field: string, min: number, max: number, names: string[], what: string, fail: (m: string) => never): Set<number> {
  const values = new Set<number>();
  const value = (token: string) => {
    const index = names.indexOf(token.toUpperCase());
    const n = index >= 0 ? index + min : /^\d+$/.test(token) ? Number(token) : Number.NaN;
    if (!(n >= min && n <= max)) fail(`${what}: ${token} is not a value from ${min} to ${max}${names.length ? ` or ${names[0]}-${names.at(-1)}` : ""}`);
    return n;
  };
  for (const part of field.split(",")) {
    const [range, stepText] = part.split("/") as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) fail(`${what}: step ${stepText} is not a positive integer`);
    let from: number;
    let to: number;
    if (range === "*") [from, to] = [min, max];
    else if (range.includes("-")) {
      const [a, b] = range.split("-") as [string, string];
      [from, to] = [value(a), value(b)];
      if (from > to) fail(`${what}: range ${range} runs backwards`);
    } else [from, to] = [value(range), stepText === undefined ? value(range) : max];
    for (let n = from; n <= to; n += step) values.add(n);
  }
  return values;
}

type DayTest = (y: number, m: number, d: number) => boolean;
const lastDay = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate();
const weekday = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d)).getUTCDay();

/** Numbers, `*`, `L` (last day), `LW` (last weekday), `15W` (weekday nearest the 15th, within the month). */
function parseDayOfMonth(field: string, fail: (m: string) => never): DayTest {
  const tests: DayTest[] = [];
  const plain: string[] = [];
  for (const part of field.split(",")) {
    if (part === "L") tests.push((y, m, d) => d === lastDay(y, m));
    else if (part === "LW") tests.push((y, m, d) => d === nearestWeekday(y, m, lastDay(y, m)));
    else if (/^\d+W$/.test(part)) {
      const target = Number(part.slice(0, -1));
      if (target < 1 || target > 31) fail(`day-of-month: ${part}`);
      tests.push((y, m, d) => target <= lastDay(y, m) && d === nearestWeekday(y, m, target));
    } else plain.push(part);
  }
  if (plain.length) {
    const days = parseField(plain.join(","), 1, 31, [], "day-of-month", fail);
    tests.push((_y, _m, d) => days.has(d));
  }
  return (y, m, d) => tests.some((test) => test(y, m, d));
}

function nearestWeekday(y: number, m: number, day: number): number {
  const w = weekday(y, m, day);
  if (w === 6) return day === 1 ? 3 : day - 1;
  if (w === 0) return day === lastDay(y, m) ? day - 2 : day + 1;
  return day;
}

/** 1-7 or SUN-SAT (1 = Sunday), `*`, `L` (Saturday), `6L` (last Friday), `2#1` (first Monday). */
function parseDayOfWeek(field: string, fail: (m: string) => never): DayTest {
  const tests: DayTest[] = [];
  const plain: string[] = [];
  const dayNumber = (token: string) => {
    const index = WEEKDAYS.indexOf(token.toUpperCase());
    const n = index >= 0 ? index + 1 : /^[1-7]$/.test(token) ? Number(token) : fail(`day-of-week: ${token} is not 1-7 or SUN-SAT`);
    return n - 1;
  };
  for (const part of field.split(",")) {
    const last = /^(\w+)L$/.exec(part);
    const nth = /^(\w+)#([1-5])$/.exec(part);
    if (part === "L") tests.push((y, m, d) => weekday(y, m, d) === 6);
    else if (last) {
      const w = dayNumber(last[1]!);
      tests.push((y, m, d) => weekday(y, m, d) === w && d + 7 > lastDay(y, m));
    } else if (nth) {
      const w = dayNumber(nth[1]!);
      const k = Number(nth[2]);
      tests.push((y, m, d) => weekday(y, m, d) === w && Math.ceil(d / 7) === k);
    } else plain.push(part);
  }
  if (plain.length) {
    const days = parseField(plain.join(","), 1, 7, WEEKDAYS, "day-of-week", fail);
    tests.push((y, m, d) => days.has(weekday(y, m, d) + 1));
  }
  return (y, m, d) => tests.some((test) => test(y, m, d));
}

// Cron fields are read on the schedule's zone's wall clock, which only Intl knows.

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallClock(instant: number, timezone: string): number[] {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timezone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(instant).map((p) => [p.type, Number(p.value)]));
  return [parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!];
}

function offsetMs(instant: number, timezone: string): number {
  const [y, mo, d, h, mi, s] = wallClock(instant, timezone) as [number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s) - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant of a wall-clock time in a zone. An ambiguous time (clocks going back) is its first
 * occurrence; a time that does not exist (clocks going forward) moves forward by the gap.
 */
export function zonedInstant(timezone: string, y: number, mo: number, d: number, h: number, mi: number, s = 0): number {
  const guess = Date.UTC(y, mo - 1, d, h, mi, s);
  if (timezone === "UTC") return guess;
  const first = offsetMs(guess, timezone);
  const t1 = guess - first;
  const second = offsetMs(t1, timezone);
  if (second === first) return t1;
  const t2 = guess - second;
  return offsetMs(t2, timezone) === second ? t2 : Math.max(t1, t2);
}

/**
 * The first fire time strictly after `after`. Rates count from `anchor` (when the schedule
 * started). Undefined when there is none (an `at` in the past, a cron whose days never occur).
 */
export function nextFireTime(schedule: ParsedSchedule, after: Date, options: { timezone?: string; anchor?: Date } = {}): Date | undefined {
  const timezone = options.timezone ?? "UTC";
  const from = after.getTime();
  if (schedule.kind === "rate") {
    const anchor = (options.anchor ?? after).getTime();
    const periods = Math.max(1, Math.floor((from - anchor) / schedule.everyMs) + 1);
    return new Date(anchor + periods * schedule.everyMs);
  }
  if (schedule.kind === "at") {
    const at = zonedInstant(timezone, ...schedule.wall);
    return at > from ? new Date(at) : undefined;
  }
  const [startYear, startMonth, startDay] = wallClock(from, timezone) as [number, number, number];
  for (let y = startYear; y <= 2199; y++) {
    if (!schedule.years.has(y)) continue;
    for (let m = y === startYear ? startMonth : 1; m <= 12; m++) {
      if (!schedule.months.has(m)) continue;
      const firstDay = y === startYear && m === startMonth ? startDay : 1;
      for (let d = firstDay; d <= lastDay(y, m); d++) {
        if (!schedule.day(y, m, d)) continue;
        for (const h of schedule.hours)
          for (const mi of schedule.minutes) {
            const instant = zonedInstant(timezone, y, m, d, h, mi);
            if (instant > from) return new Date(instant);
          }
      }
    }
  }
  return undefined;
}

interface Compiled {
  spec: ScheduleSpec;
  arn: string;
  parsed: ParsedSchedule;
  timezone: string;
  payload: unknown;
  timer?: NodeJS.Timeout;
  nextFireAt?: Date;
}

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export class Scheduler {
  private compiled = new Map<string, Compiled>();
  private readonly log: ScheduleRun[] = [];
  private readonly inFlight = new Set<Promise<ScheduleRun>>();
  private readonly retryTimers = new Map<NodeJS.Timeout, () => void>();
  private readonly scope: AwsScope;
  private readonly now: () => number;
  private failDeliveries: { count: number; code: string } = { count: 0, code: "ThrottlingException" };
  private running = false;
  private anchor = 0;

  constructor(private readonly options: SchedulerOptions) {
    this.scope = options.scope ?? DEFAULT_SCOPE;
    this.now = options.now ?? Date.now;
    this.setSchedules(options.schedules ?? []);
    if (options.timers !== false) this.start();
  }

  /**
   * Replaces the schedules; throws (changing nothing) for an expression, time zone or input AWS
   * would refuse at CreateSchedule.
   */
  setSchedules(specs: ScheduleSpec[]) {
    const next = new Map<string, Compiled>();
    for (const spec of specs) {
      const where = `schedule ${spec.name}`;
      const timezone = spec.timezone || "UTC";
      try {
        new Intl.DateTimeFormat("en-US", { timeZone: timezone });
      } catch {
        throw new ScheduleExpressionError(`${where}: unknown time zone ${timezone}`);
      }
      let payload: unknown = {};
      if (spec.target.input !== undefined) {
        try {
          payload = JSON.parse(spec.target.input);
        } catch {
          throw new ScheduleExpressionError(`${where}: a Lambda target's input must be well-formed JSON`);
        }
      }
      let parsed: ParsedSchedule;
      try {
        parsed = parseScheduleExpression(spec.scheduleExpression);
      } catch (error) {
        throw new ScheduleExpressionError(`${where}: ${(error as Error).message}`);
      }
      next.set(spec.name, { spec, arn: scheduleArn(this.scope, spec.groupName ?? "default", spec.name), parsed, timezone, payload });
    }
    for (const schedule of this.compiled.values()) clearTimeout(schedule.timer);
    this.compiled = next;
    if (this.running) for (const schedule of this.compiled.values()) this.arm(schedule, new Date(this.now()));
  }

  /** Fires enabled schedules on their timetables from now on (rates: first one interval from now). */
  start() {
    if (this.running) return;
    this.running = true;
    this.anchor = this.now();
    for (const schedule of this.compiled.values()) this.arm(schedule, new Date(this.anchor));
  }

  /** Stops the timetables and pending delivery retries; runs under way finish. */
  async stop(): Promise<void> {
    this.running = false;
    for (const schedule of this.compiled.values()) {
      clearTimeout(schedule.timer);
      schedule.timer = undefined;
      schedule.nextFireAt = undefined;
    }
    for (const [timer, cancel] of this.retryTimers) {
      clearTimeout(timer);
      cancel();
    }
    this.retryTimers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  schedules(): ScheduleInfo[] {
    return [...this.compiled.values()].map((s) => ({
      name: s.spec.name,
      arn: s.arn,
      expression: s.spec.scheduleExpression,
      timezone: s.timezone,
      state: s.spec.state ?? "ENABLED",
      ...(s.nextFireAt ? { nextFireAt: s.nextFireAt.toISOString() } : {}),
    }));
  }

  /**
   * Runs a schedule now, enabled or not, and resolves when the run is over: the input handed to
   * Lambda (or dead-lettered) and the invocation finished, Lambda's retries included.
   */
  fire(name: string): Promise<ScheduleRun> {
    const schedule = this.compiled.get(name);
    if (!schedule) return Promise.reject(new Error(`no schedule named ${name}`));
    return this.track(this.run(schedule, "manual", new Date(this.now())));
  }

  /** The next `count` attempts to hand an input to Lambda fail with a retryable error, so retry policies are exercised. */
  failNextDeliveries(count: number, errorCode = "ThrottlingException") {
    this.failDeliveries = { count, code: errorCode };
  }

  /** Runs, oldest first. */
  runs(): readonly ScheduleRun[] {
    return this.log;
  }

  /** Resolves when no run is under way and Lambda is idle. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await this.options.lambda.idle();
      if (this.inFlight.size === 0) return;
    }
  }

  private arm(schedule: Compiled, after: Date) {
    clearTimeout(schedule.timer);
    schedule.timer = undefined;
    schedule.nextFireAt = undefined;
    if (!this.running || (schedule.spec.state ?? "ENABLED") !== "ENABLED") return;
    const next = nextFireTime(schedule.parsed, after, { timezone: schedule.timezone, anchor: new Date(this.anchor) });
    if (!next) return;
    schedule.nextFireAt = next;
    const wait = () => {
      const remaining = next.getTime() - this.now();
      schedule.timer = setTimeout(
        () => {
          // Node caps a timeout at about 24.8 days: a later fire waits in steps.
          if (next.getTime() > this.now()) return wait();
          if (this.compiled.get(schedule.spec.name) !== schedule || !this.running) return;
          void this.track(this.run(schedule, "timer", next));
          // From the fire time, not from now, so a slow run does not shift the timetable; a
          // fire time already past (the machine slept) is not caught up on.
          this.arm(schedule, new Date(Math.max(next.getTime(), this.now() - 1)));
        },
        Math.min(Math.max(remaining, 0), MAX_TIMEOUT_MS),
      );
    };
    wait();
  }

  private async run(schedule: Compiled, trigger: ScheduleRun["trigger"], scheduledTime: Date): Promise<ScheduleRun> {
    const run: ScheduleRun = { schedule: schedule.spec.name, trigger, scheduledTime: scheduledTime.toISOString(), delivery: "pending", deliveryAttempts: 0 };
    this.log.push(run);
    if (this.log.length > (this.options.logLimit ?? 1000)) this.log.shift();
    const target = schedule.spec.target;
    const maxRetries = target.retryPolicy?.maximumRetryAttempts ?? 185;
    const maxAgeMs = (target.retryPolicy?.maximumEventAgeInSeconds ?? 86_400) * 1000;
    const started = this.now();
    for (;;) {
      run.deliveryAttempts++;
      let retriable = true;
      try {
        if (this.failDeliveries.count > 0) {
          this.failDeliveries.count--;
          throw Object.assign(new Error("Rate exceeded (injected by the twin)"), { name: this.failDeliveries.code });
        }
        const accepted = this.options.lambda.invokeAsync(target.arn, schedule.payload);
        run.delivery = "delivered";
        run.requestId = accepted.requestId;
        run.invocation = await accepted.done;
        return this.finish(run);
      } catch (error) {
        // As with EventBridge, a function that does not exist is not worth retrying.
        retriable = !(error instanceof FunctionNotFoundError);
        run.errorCode = (error as Error).name;
        run.errorMessage = (error as Error).message;
      }
      let exhausted: "MaximumRetryAttempts" | "MaximumEventAgeInSeconds" | undefined;
      if (retriable) {
        if (run.deliveryAttempts > maxRetries) exhausted = "MaximumRetryAttempts";
        else {
          run.delivery = "retrying";
          const delay = Math.min((this.options.retryBaseDelayMs ?? 200) * 2 ** (run.deliveryAttempts - 1), this.options.retryMaxDelayMs ?? 5000);
          if (!(await this.sleep(delay))) {
            run.delivery = "stopped";
            return this.finish(run);
          }
          if (this.now() - started <= maxAgeMs) continue;
          exhausted = "MaximumEventAgeInSeconds";
        }
      }
      this.deadLetter(schedule, run, exhausted);
      return this.finish(run);
    }
  }

  private deadLetter(schedule: Compiled, run: ScheduleRun, exhausted: string | undefined) {
    const queue = schedule.spec.target.deadLetterArn;
    if (!queue) {
      run.delivery = "dropped";
      return;
    }
    const attributes: Record<string, string> = {
      SCHEDULE_ARN: schedule.arn,
      TARGET_ARN: schedule.spec.target.arn,
      ERROR_CODE: run.errorCode ?? "",
      ERROR_MESSAGE: run.errorMessage ?? "",
      RETRY_ATTEMPTS: String(run.deliveryAttempts - 1),
      [SOURCE_ATTRIBUTE]: "scheduler:dead-letter" satisfies MessageSource,
    };
    if (exhausted) attributes.EXHAUSTED_RETRY_CONDITION = exhausted;
    try {
      // The body is what the target would have received, so a redrive can send it again.
      const message = this.options.queues.send(queue, JSON.stringify(schedule.payload), attributes);
      run.delivery = "dead-lettered";
      run.deadLetter = { queue, messageId: message.messageId };
    } catch (error) {
      run.delivery = "dropped";
      run.errorMessage = `${run.errorMessage}; dead-letter queue: ${(error as Error).message}`;
    }
  }

  private finish(run: ScheduleRun): ScheduleRun {
    run.finishedAt = new Date(this.now()).toISOString();
    return run;
  }

  private track(promise: Promise<ScheduleRun>): Promise<ScheduleRun> {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise));
    return promise;
  }

  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        resolve(true);
      }, ms);
      this.retryTimers.set(timer, () => resolve(false));
    });
  }
}
