import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test, vi } from "vitest";
import type { Invoke, InvokeOutcome } from "../contracts";
import { LambdaAsync } from "./lambda-async";
import { Queues } from "./queues";
import { nextFireTime, parseScheduleExpression, Scheduler, type ScheduleSpec } from "./scheduler";

const next = (expression: string, after: string, timezone?: string) =>
  nextFireTime(parseScheduleExpression(expression), new Date(after), { timezone })?.toISOString();

describe("schedule expressions", () => {
  test.each([
    ["cron(0 3 * * ? *)", "2026-03-10T02:59:59Z", "2026-03-10T03:00:00.000Z"],
    ["cron(0 3 * * ? *)", "2026-03-10T03:00:00Z", "2026-03-11T03:00:00.000Z"],
    ["cron(0/15 * * * ? *)", "2026-03-10T10:07:00Z", "2026-03-10T10:15:00.000Z"],
    ["cron(0/15 * * * ? *)", "2026-03-10T10:45:00Z", "2026-03-10T11:00:00.000Z"],
    ["cron(*/5 8-10 * * ? *)", "2026-03-10T10:56:00Z", "2026-03-11T08:00:00.000Z"],
    ["cron(0 9 ? * MON-FRI *)", "2026-03-13T09:00:00Z", "2026-03-16T09:00:00.000Z"],
    ["cron(0 9 ? * 2,4 *)", "2026-03-10T12:00:00Z", "2026-03-11T09:00:00.000Z"],
    ["cron(0 0 L * ? *)", "2028-02-01T00:00:00Z", "2028-02-29T00:00:00.000Z"],
    ["cron(0 12 ? * 2#1 *)", "2026-03-10T00:00:00Z", "2026-04-06T12:00:00.000Z"],
    ["cron(0 18 ? * 6L *)", "2026-03-10T00:00:00Z", "2026-03-27T18:00:00.000Z"],
    ["cron(0 8 15W * ? *)", "2026-03-10T00:00:00Z", "2026-03-16T08:00:00.000Z"],
    ["cron(0 0 1 JAN ? 2030)", "2026-03-10T00:00:00Z", "2030-01-01T00:00:00.000Z"],
    ["at(2026-04-01T09:30:00)", "2026-03-10T00:00:00Z", "2026-04-01T09:30:00.000Z"],
  ])("%s after %s is %s", (expression, after, expected) => {
    expect(next(expression, after)).toBe(expected);
  });

  test("cron fields are read on the schedule's time zone's clock", () => {
    expect(next("cron(30 2 * * ? *)", "2026-01-10T00:00:00Z", "America/New_York")).toBe("2026-01-10T07:30:00.000Z");
    expect(next("cron(30 2 * * ? *)", "2026-03-10T00:00:00Z", "America/New_York")).toBe("2026-03-10T06:30:00.000Z");
    // 02:30 does not exist on 8 March 2026 in New York: the run moves forward by the hour skipped.
    expect(next("cron(30 2 * * ? *)", "2026-03-08T00:00:00Z", "America/New_York")).toBe("2026-03-08T07:30:00.000Z");
  });

  test("rates count from the anchor; a schedule that never fires has no next time", () => {
    const rate = parseScheduleExpression("rate(5 minutes)");
    expect(nextFireTime(rate, new Date("2026-03-10T10:07:00Z"), { anchor: new Date("2026-03-10T10:00:00Z") })?.toISOString()).toBe("2026-03-10T10:10:00.000Z");
    expect(nextFireTime(parseScheduleExpression("rate(1 minute)"), new Date("2026-03-10T10:00:00Z"))?.toISOString()).toBe("2026-03-10T10:01:00.000Z");
    expect(parseScheduleExpression("rate(1 hour)")).toEqual({ kind: "rate", everyMs: 3_600_000 });
    expect(parseScheduleExpression("rate(2 days)")).toEqual({ kind: "rate", everyMs: 172_800_000 });
    expect(next("cron(0 0 30 2 ? *)", "2026-03-10T00:00:00Z")).toBeUndefined();
    expect(next("at(2026-04-01T09:30:00)", "2026-04-01T09:30:00Z")).toBeUndefined();
  });

  test.each([
    ["rate(1 minutes)", /singular/],
    ["rate(5 minute)", /plural/],
    ["rate(0 minutes)", /positive/],
    ["rate(5 seconds)", /rate is/],
    ["cron(0 3 * * *)", /6 fields/],
    ["cron(0 3 * * * *)", /exactly one of day-of-month and day-of-week/],
    ["cron(0 3 ? * ? *)", /exactly one of day-of-month and day-of-week/],
    ["cron(60 3 * * ? *)", /minutes: 60/],
    ["cron(0 3 * 13 ? *)", /month: 13/],
    ["cron(0 3 ? * 8 *)", /day-of-week: 8/],
    ["every 5 minutes", /not rate/],
  ])("%s is refused", (expression, message) => {
    expect(() => parseScheduleExpression(expression)).toThrow(message);
  });
});

const DLQ = "arn:aws:sqs:us-east-1:000000000000:cron-dlq";
const fn = (name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`;
const ok: InvokeOutcome = { ok: true, result: null, durationMs: 1, coldStart: false };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup(schedules: ScheduleSpec[], options: { invoke?: Invoke; timers?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "twin-scheduler-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const invoke = vi.fn<Invoke>(options.invoke ?? (async () => ok));
  const queues = new Queues({ dir });
  const lambda = new LambdaAsync({ invoke, queues, retryBaseDelayMs: 2, functions: [{ name: "sweeper", onFailure: DLQ }] });
  const scheduler = new Scheduler({ lambda, queues, schedules, timers: options.timers ?? false, retryBaseDelayMs: 2 });
  cleanups.push(() => scheduler.stop());
  return { invoke, queues, lambda, scheduler };
}

const sweeper = (over: Partial<ScheduleSpec> = {}): ScheduleSpec => ({
  name: "outbox-sweeper",
  scheduleExpression: "rate(1 minute)",
  target: { arn: fn("sweeper"), input: '{"job":"sweep"}', retryPolicy: { maximumRetryAttempts: 2 }, deadLetterArn: DLQ },
  ...over,
});

describe("scheduler", () => {
  test("fire runs the schedule now and resolves with the finished invocation", async () => {
    const { scheduler, invoke } = setup([sweeper(), sweeper({ name: "bare", target: { arn: fn("sweeper") } })]);
    const run = await scheduler.fire("outbox-sweeper");
    expect(invoke).toHaveBeenCalledWith("sweeper", { job: "sweep" });
    expect(run).toMatchObject({
      schedule: "outbox-sweeper",
      trigger: "manual",
      delivery: "delivered",
      deliveryAttempts: 1,
      invocation: { status: "succeeded" },
    });

    // No input: the function gets an empty object.
    await scheduler.fire("bare");
    expect(invoke).toHaveBeenLastCalledWith("sweeper", {});
    await expect(scheduler.fire("nope")).rejects.toThrow(/no schedule named nope/);
  });

  test("a failing function is retried by Lambda and recorded on its destination; the run reports it", async () => {
    const invoke: Invoke = async () => ({ ok: false, errorType: "Error", errorMessage: "db down", durationMs: 1, coldStart: false });
    const { scheduler, queues } = setup([sweeper()], { invoke });
    const run = await scheduler.fire("outbox-sweeper");
    expect(run.delivery).toBe("delivered");
    expect(run.invocation).toMatchObject({ status: "failed", condition: "RetriesExhausted" });
    expect(run.invocation!.attempts).toHaveLength(3);
    expect(JSON.parse(queues.messages(DLQ)[0]!.body).requestPayload).toEqual({ job: "sweep" });
  });

  test("hand-over failures follow Scheduler's retry policy and dead-letter the input; a redrive sends it again", async () => {
    const { scheduler, queues, lambda, invoke } = setup([sweeper(), sweeper({ name: "orphan", target: { arn: fn("gone"), input: "{}", deadLetterArn: DLQ } })]);
    scheduler.failNextDeliveries(3);
    const run = await scheduler.fire("outbox-sweeper");
    expect(run).toMatchObject({ delivery: "dead-lettered", deliveryAttempts: 3, errorCode: "ThrottlingException" });
    const [message] = queues.messages(DLQ);
    expect(JSON.parse(message!.body)).toEqual({ job: "sweep" });
    expect(message!.attributes).toMatchObject({
      SCHEDULE_ARN: "arn:aws:scheduler:us-east-1:000000000000:schedule/default/outbox-sweeper",
      TARGET_ARN: fn("sweeper"),
      RETRY_ATTEMPTS: "2",
      EXHAUSTED_RETRY_CONDITION: "MaximumRetryAttempts",
    });

    // A function that does not exist is not retried.
    expect(await scheduler.fire("orphan")).toMatchObject({ delivery: "dead-lettered", deliveryAttempts: 1, errorCode: "ResourceNotFoundException" });

    const results = await queues.redrive(DLQ, { lambda });
    expect(results.map((r) => [r.kind, r.outcome])).toEqual([
      ["scheduler-dead-letter", "succeeded"],
      ["scheduler-dead-letter", "failed"],
    ]);
    await lambda.idle();
    expect(invoke).toHaveBeenCalledWith("sweeper", { job: "sweep" });
    expect(queues.messages(DLQ)).toHaveLength(1);
  });

  test("enabled schedules fire on their timetable; disabled ones and stopped schedulers do not", async () => {
    vi.useFakeTimers({ now: new Date("2026-03-10T10:00:30Z") });
    const { scheduler, invoke } = setup(
      [sweeper(), sweeper({ name: "nightly", scheduleExpression: "cron(0 3 * * ? *)" }), sweeper({ name: "off", state: "DISABLED" })],
      { timers: true },
    );
    expect(scheduler.schedules().map((s) => [s.name, s.nextFireAt])).toEqual([
      ["outbox-sweeper", "2026-03-10T10:01:30.000Z"],
      ["nightly", "2026-03-11T03:00:00.000Z"],
      ["off", undefined],
    ]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(invoke).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(scheduler.runs().map((r) => [r.schedule, r.trigger, r.scheduledTime])).toEqual([
      ["outbox-sweeper", "timer", "2026-03-10T10:01:30.000Z"],
      ["outbox-sweeper", "timer", "2026-03-10T10:02:30.000Z"],
      ["outbox-sweeper", "timer", "2026-03-10T10:03:30.000Z"],
    ]);
    await scheduler.stop();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(invoke).toHaveBeenCalledTimes(3);
  });

  test("schedules AWS would refuse are refused", () => {
    expect(() => setup([sweeper({ scheduleExpression: "rate(1 minutes)" })])).toThrow(/outbox-sweeper/);
    expect(() => setup([sweeper({ timezone: "Mars/Olympus" })])).toThrow(/time zone/);
    expect(() => setup([sweeper({ target: { arn: fn("sweeper"), input: "not json" } })])).toThrow(/well-formed JSON/);
  });
});
