import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { BusEvent as CoreBusEvent } from "@enclave/core/events/bus";
import { type EventPattern, matchesPattern } from "@enclave/core/events/pattern";
import { type AwsScope, DEFAULT_SCOPE, eventBusName, functionName, ruleArn } from "./arn";
import { FunctionNotFoundError, type LambdaAsync } from "./lambda-async";
import { type MessageSource, type Queues, SOURCE_ATTRIBUTE } from "./queues";
import { Sleeps } from "./sleeps";

/**
 * EventBridge for the twin: the PutEvents endpoint the application's SDK client talks to, and
 * the rules that deliver matching events to Lambda targets. Delivery to Lambda is an
 * asynchronous invoke, so EventBridge's own retry policy and dead-letter queue only cover
 * failures to hand the event over; a function that fails is Lambda's business (lambda-async.ts).
 */

export interface RetryPolicy {
  /** 0..185; EventBridge's default is 185. */
  maximumRetryAttempts?: number;
  /** 60..86400; EventBridge's default is 86400. */
  maximumEventAgeInSeconds?: number;
}

/** One rule target (an EventTarget of the capture). Only Lambda targets, with the event passed as is. */
export interface TargetSpec {
  id?: string;
  /** The function's ARN. */
  arn: string;
  retryPolicy?: RetryPolicy;
  /** ARN of the SQS queue of the target's deadLetterConfig. */
  deadLetterArn?: string;
}

/** One rule (an EventRule of the capture) with its targets. */
export interface RuleSpec {
  name: string;
  /** Name or ARN; `default` when absent. */
  eventBusName?: string;
  /** The rule's eventPattern, as the capture has it (a JSON string) or parsed. */
  eventPattern: string | EventPattern;
  state?: "ENABLED" | "DISABLED";
  targets: TargetSpec[];
}

export interface EventBridgeOptions {
  lambda: Pick<LambdaAsync, "invokeAsync" | "idle">;
  queues: Pick<Queues, "send">;
  rules?: RuleSpec[];
  /** Buses besides `default` and those the rules are on. */
  buses?: string[];
  scope?: AwsScope;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** First wait between delivery attempts, doubled each time up to `retryMaxDelayMs`. Default 200 ms. */
  retryBaseDelayMs?: number;
  /** Default 5 s. */
  retryMaxDelayMs?: number;
  /**
   * An entry for a bus that does not exist. AWS answers success and drops the event (a long-
   * standing, reported behaviour); the twin fails the entry by default so a wrong bus name shows.
   */
  unknownBus?: "fail" | "drop";
  /** Entries and deliveries kept for inspection. Default 10 000 each. */
  logLimit?: number;
  now?: () => number;
}

/** A PutEvents request entry as the SDK serialises it (`Time` in epoch seconds). */
export interface PutEventsRequestEntry {
  Time?: number | string;
  Source?: string;
  DetailType?: string;
  Detail?: string;
  EventBusName?: string;
  Resources?: string[];
  TraceHeader?: string;
}

export interface PutEventsResultEntry {
  EventId?: string;
  ErrorCode?: string;
  ErrorMessage?: string;
}

export interface PutEventsResponse {
  FailedEntryCount: number;
  Entries: PutEventsResultEntry[];
}

/** An event as EventBridge hands it to targets: any JSON object as its detail, not only our envelopes. */
export type BusEvent = CoreBusEvent<Record<string, unknown>>;

export interface AcceptedEntry {
  eventId: string;
  bus: string;
  source: string;
  detailType: string;
  detail: Record<string, unknown>;
  time: string;
  receivedAt: string;
  /** Rules whose pattern matched. */
  matchedRules: string[];
}

export interface DeliveryRecord {
  eventId: string;
  bus: string;
  rule: string;
  ruleArn: string;
  /** The target's function ARN. */
  target: string;
  functionName: string;
  /** `failed` is a redelivery that did not get through (the message stays in its queue). */
  outcome: "pending" | "retrying" | "delivered" | "dead-lettered" | "dropped" | "failed" | "stopped";
  attempts: number;
  redelivery: boolean;
  /** Lambda's request id once the function accepted the event, and how that invocation ended. */
  requestId?: string;
  invocation?: "running" | "retrying" | "succeeded" | "failed" | "stopped";
  errorCode?: string;
  errorMessage?: string;
  deadLetter?: { queue: string; messageId: string };
}

/** A request-level error: HTTP 400 with `{"__type", "message"}`. */
export class EventBridgeRequestError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

export const PUT_EVENTS_MAX_ENTRIES = 10;
export const PUT_EVENTS_MAX_ENTRY_BYTES = 1024 * 1024;

interface CompiledRule {
  spec: RuleSpec;
  bus: string;
  arn: string;
  pattern: EventPattern;
}

interface DeliveryFailure {
  code: string;
  message: string;
  retriable: boolean;
}

export class EventBridge {
  private compiled: CompiledRule[] = [];
  private readonly buses = new Set<string>(["default"]);
  private readonly accepted: AcceptedEntry[] = [];
  private readonly delivered: DeliveryRecord[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly sleeps = new Sleeps();
  private readonly scope: AwsScope;
  private readonly now: () => number;
  private server: Server | undefined;
  private failEntries: { count: number; code: string } = { count: 0, code: "InternalFailure" };
  private failDeliveries: { count: number; code: string } = { count: 0, code: "THROTTLING" };

  constructor(private readonly options: EventBridgeOptions) {
    this.scope = options.scope ?? DEFAULT_SCOPE;
    this.now = options.now ?? Date.now;
    for (const bus of options.buses ?? []) this.buses.add(eventBusName(bus));
    this.setRules(options.rules ?? []);
  }

  /** Replaces the rules. Throws for a pattern or target the twin cannot honour as AWS would. */
  setRules(rules: RuleSpec[]) {
    this.compiled = rules.map((spec) => {
      const bus = eventBusName(spec.eventBusName ?? "default");
      const pattern = typeof spec.eventPattern === "string" ? (JSON.parse(spec.eventPattern) as EventPattern) : spec.eventPattern;
      assertSupportedPattern(pattern, `rule ${spec.name}`);
      for (const target of spec.targets)
        if (target.arn.startsWith("arn:") && target.arn.split(":")[2] !== "lambda")
          throw new Error(`rule ${spec.name}: target ${target.arn} is not a Lambda function; the twin delivers to Lambda targets only`);
      return { spec, bus, arn: ruleArn(this.scope, bus, spec.name), pattern };
    });
    for (const rule of this.compiled) this.buses.add(rule.bus);
  }

  rules(): readonly RuleSpec[] {
    return this.compiled.map((rule) => rule.spec);
  }

  /** Starts the HTTP endpoint on 127.0.0.1; resolves to its URL (for the SDK's `endpoint`). */
  async listen(): Promise<string> {
    if (this.server) return this.endpoint!;
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port ?? 0, "127.0.0.1", () => resolve());
    });
    this.server = server;
    return this.endpoint!;
  }

  get endpoint(): string | undefined {
    return this.server ? `http://127.0.0.1:${(this.server.address() as AddressInfo).port}` : undefined;
  }

  /** Stops the endpoint and pending delivery retries; deliveries under way finish. */
  async close(): Promise<void> {
    this.sleeps.cancelAll();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * PutEvents, validated as AWS validates it: a request-level problem throws
   * EventBridgeRequestError (HTTP 400); an entry-level one fails that entry only. Every accepted
   * entry is delivered, in the background, to the targets of the rules it matches.
   */
  putEvents(request: { Entries?: unknown }): PutEventsResponse {
    const entries = request?.Entries;
    if (!Array.isArray(entries))
      throw new EventBridgeRequestError(
        "ValidationException",
        "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null",
      );
    if (entries.length < 1 || entries.length > PUT_EVENTS_MAX_ENTRIES)
      throw new EventBridgeRequestError(
        "ValidationException",
        `1 validation error detected: Value '[${entries.length} entries]' at 'entries' failed to satisfy constraint: Member must have length ${entries.length < 1 ? "greater than or equal to 1" : `less than or equal to ${PUT_EVENTS_MAX_ENTRIES}`}`,
      );
    const results = entries.map((entry) => this.putEntry(entry as PutEventsRequestEntry));
    return { FailedEntryCount: results.filter((r) => r.ErrorCode).length, Entries: results };
  }

  /** The next `count` entries that would be accepted fail with `errorCode` instead (a retryable PutEvents failure). */
  failNextEntries(count: number, errorCode = "InternalFailure") {
    this.failEntries = { count, code: errorCode };
  }

  /** The next `count` attempts to hand an event to a target fail with a retryable error, so target retry policies are exercised. */
  failNextDeliveries(count: number, errorCode = "THROTTLING") {
    this.failDeliveries = { count, code: errorCode };
  }

  /** Accepted entries, oldest first. */
  entries(): readonly AcceptedEntry[] {
    return this.accepted;
  }

  /** Deliveries (one per matched target, and one per redelivery), oldest first. */
  deliveries(): readonly DeliveryRecord[] {
    return this.delivered;
  }

  /**
   * Delivers an event again to one target of a rule (a redrive of a dead letter). A failure is
   * reported, not dead-lettered again: the message it came from is still in its queue.
   */
  async redeliver(input: { event: Record<string, unknown>; ruleArn: string; targetArn: string }): Promise<DeliveryRecord> {
    const rule = this.compiled.find((r) => r.arn === input.ruleArn || r.spec.name === input.ruleArn);
    const target = rule?.spec.targets.find((t) => functionName(t.arn) === functionName(input.targetArn));
    if (!rule || !target) {
      const record: DeliveryRecord = {
        eventId: String(input.event.id ?? ""),
        bus: rule?.bus ?? "",
        rule: rule?.spec.name ?? input.ruleArn,
        ruleArn: rule?.arn ?? input.ruleArn,
        target: input.targetArn,
        functionName: functionName(input.targetArn),
        outcome: "failed",
        attempts: 0,
        redelivery: true,
        errorCode: "RESOURCE_NOT_FOUND",
        errorMessage: `rule ${input.ruleArn} has no target ${input.targetArn} in this stage`,
      };
      this.logDelivery(record);
      return record;
    }
    return this.track(this.deliver(rule, target, input.event as unknown as BusEvent, true));
  }

  /** Resolves when no delivery is pending and Lambda has finished every invocation it accepted. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await this.options.lambda.idle();
      if (this.inFlight.size === 0) return;
    }
  }

  private putEntry(entry: PutEventsRequestEntry): PutEventsResultEntry {
    const fail = (ErrorCode: string, ErrorMessage: string): PutEventsResultEntry => ({ ErrorCode, ErrorMessage });
    if (entry === null || typeof entry !== "object") return fail("InvalidArgument", "Parameter Entry is not valid.");
    for (const field of ["Source", "DetailType", "Detail"] as const)
      if (typeof entry[field] !== "string" || entry[field] === "")
        return fail("InvalidArgument", `Parameter ${field} is not valid. Reason: ${field} is a required argument.`);
    const resources = entry.Resources ?? [];
    if (!Array.isArray(resources) || resources.some((r) => typeof r !== "string")) return fail("InvalidArgument", "Parameter Resources is not valid.");
    const size = entrySize(entry, resources);
    if (size > PUT_EVENTS_MAX_ENTRY_BYTES) return fail("InvalidArgument", `Entry size ${size} bytes exceeds the limit of ${PUT_EVENTS_MAX_ENTRY_BYTES} bytes.`);
    const detail = parseObject(entry.Detail!);
    if (!detail) return fail("MalformedDetail", "Detail is malformed.");
    const time = entry.Time === undefined ? this.now() : typeof entry.Time === "number" ? entry.Time * 1000 : Date.parse(entry.Time);
    if (!Number.isFinite(time)) return fail("InvalidArgument", "Parameter Time is not valid.");
    const bus = eventBusName(entry.EventBusName || "default");
    const busExists = this.buses.has(bus);
    if (!busExists && this.options.unknownBus !== "drop") return fail("ResourceNotFoundException", `Event bus ${bus} does not exist.`);
    if (this.failEntries.count > 0) {
      this.failEntries.count--;
      return fail(this.failEntries.code, "Internal Failure (injected by the twin)");
    }

    const event: BusEvent = {
      version: "0",
      id: randomUUID(),
      "detail-type": entry.DetailType!,
      source: entry.Source!,
      account: this.scope.account,
      // EventBridge keeps whole seconds.
      time: new Date(Math.floor(time / 1000) * 1000).toISOString().replace(".000Z", "Z"),
      region: this.scope.region,
      resources,
      detail,
    };
    const matched = busExists
      ? this.compiled.filter((r) => r.bus === bus && r.spec.state !== "DISABLED" && matchesPattern(r.pattern, event as unknown as Record<string, unknown>))
      : [];
    this.bounded(this.accepted, {
      eventId: event.id,
      bus,
      source: event.source,
      detailType: event["detail-type"],
      detail,
      time: event.time,
      receivedAt: new Date(this.now()).toISOString(),
      matchedRules: matched.map((r) => r.spec.name),
    });
    for (const rule of matched) for (const target of rule.spec.targets) this.track(this.deliver(rule, target, event, false));
    return { EventId: event.id };
  }

  private async deliver(rule: CompiledRule, target: TargetSpec, event: BusEvent, redelivery: boolean): Promise<DeliveryRecord> {
    const record: DeliveryRecord = {
      eventId: event.id,
      bus: rule.bus,
      rule: rule.spec.name,
      ruleArn: rule.arn,
      target: target.arn,
      functionName: functionName(target.arn),
      outcome: "pending",
      attempts: 0,
      redelivery,
    };
    this.logDelivery(record);
    const maxRetries = target.retryPolicy?.maximumRetryAttempts ?? 185;
    const maxAgeMs = (target.retryPolicy?.maximumEventAgeInSeconds ?? 86_400) * 1000;
    const started = this.now();
    for (;;) {
      record.attempts++;
      const failure = this.handOver(target, event, record);
      if (!failure) {
        record.outcome = "delivered";
        return record;
      }
      record.errorCode = failure.code;
      record.errorMessage = failure.message;
      let exhausted: "MaximumRetryAttempts" | "MaximumEventAgeInSeconds" | undefined;
      if (failure.retriable) {
        if (record.attempts > maxRetries) exhausted = "MaximumRetryAttempts";
        else {
          record.outcome = "retrying";
          const baseDelay = this.options.retryBaseDelayMs ?? 200;
          if (!(await this.sleeps.sleep(Math.min(baseDelay * 2 ** (record.attempts - 1), this.options.retryMaxDelayMs ?? 5000)))) {
            record.outcome = "stopped";
            return record;
          }
          if (this.now() - started <= maxAgeMs) continue;
          exhausted = "MaximumEventAgeInSeconds";
        }
      }
      // Not retriable (no such function), or retries used up.
      if (redelivery) record.outcome = "failed";
      else if (target.deadLetterArn) this.deadLetter(rule, target, event, record, exhausted);
      else record.outcome = "dropped";
      return record;
    }
  }

  /** One attempt to hand the event to Lambda; undefined when Lambda accepted it. */
  private handOver(target: TargetSpec, event: BusEvent, record: DeliveryRecord): DeliveryFailure | undefined {
    if (this.failDeliveries.count > 0) {
      this.failDeliveries.count--;
      return { code: this.failDeliveries.code, message: "Rate exceeded (injected by the twin)", retriable: true };
    }
    try {
      const accepted = this.options.lambda.invokeAsync(target.arn, event);
      record.requestId = accepted.requestId;
      record.invocation = "running";
      void accepted.done.then((invocation) => {
        record.invocation = invocation.status;
      });
      return undefined;
    } catch (error) {
      // A missing function is not retried: AWS sends such events straight to the dead-letter queue.
      if (error instanceof FunctionNotFoundError) return { code: "RESOURCE_NOT_FOUND", message: error.message, retriable: false };
      return { code: "SDK_CLIENT_ERROR", message: (error as Error).message, retriable: true };
    }
  }

  private deadLetter(rule: CompiledRule, target: TargetSpec, event: BusEvent, record: DeliveryRecord, exhausted: string | undefined) {
    const attributes: Record<string, string> = {
      RULE_ARN: rule.arn,
      TARGET_ARN: target.arn,
      ERROR_CODE: record.errorCode ?? "",
      ERROR_MESSAGE: record.errorMessage ?? "",
      RETRY_ATTEMPTS: String(record.attempts - 1),
      [SOURCE_ATTRIBUTE]: "events:dead-letter" satisfies MessageSource,
    };
    if (exhausted) attributes.EXHAUSTED_RETRY_CONDITION = exhausted;
    try {
      const message = this.options.queues.send(target.deadLetterArn!, JSON.stringify(event), attributes);
      record.outcome = "dead-lettered";
      record.deadLetter = { queue: target.deadLetterArn!, messageId: message.messageId };
    } catch (error) {
      record.outcome = "dropped";
      record.errorMessage = `${record.errorMessage}; dead-letter queue: ${(error as Error).message}`;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        "content-type": "application/x-amz-json-1.1",
        "content-length": Buffer.byteLength(text),
        "x-amzn-requestid": randomUUID(),
      });
      res.end(text);
    };
    try {
      const target = String(req.headers["x-amz-target"] ?? "");
      const text = await readBody(req, PUT_EVENTS_MAX_ENTRIES * PUT_EVENTS_MAX_ENTRY_BYTES * 2);
      if (req.method !== "POST" || target !== "AWSEvents.PutEvents") {
        reply(400, {
          __type: "UnknownOperationException",
          message: `The twin's EventBridge answers AWSEvents.PutEvents only, not ${req.method} ${target || "(no x-amz-target)"}`,
        });
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(text || "{}");
      } catch {
        reply(400, { __type: "SerializationException", message: "Start of structure or map found where not expected." });
        return;
      }
      reply(200, this.putEvents(body as { Entries?: unknown }));
    } catch (error) {
      if (error instanceof EventBridgeRequestError) reply(400, { __type: error.type, message: error.message });
      else reply(500, { __type: "InternalFailure", message: (error as Error).message });
    }
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise));
    return promise;
  }

  private logDelivery(record: DeliveryRecord) {
    this.bounded(this.delivered, record);
  }

  private bounded<T>(log: T[], item: T) {
    log.push(item);
    if (log.length > (this.options.logLimit ?? 10_000)) log.shift();
  }
}

/**
 * The matcher covers a subset of EventBridge's pattern language; a rule using more (suffix,
 * numeric, wildcard, $or, …) is refused here rather than matched wrongly.
 */
export function assertSupportedPattern(pattern: unknown, where: string) {
  if (pattern === null || typeof pattern !== "object" || Array.isArray(pattern)) throw new Error(`${where}: an event pattern is a JSON object`);
  for (const [field, rule] of Object.entries(pattern)) {
    if (field.startsWith("$")) throw new Error(`${where}: ${field} is not supported by the twin's pattern matcher`);
    if (!Array.isArray(rule)) {
      assertSupportedPattern(rule, `${where}.${field}`);
      continue;
    }
    for (const value of rule) {
      if (value === null || ["string", "number", "boolean"].includes(typeof value)) continue;
      const keys = typeof value === "object" ? Object.keys(value) : [];
      const [operator] = keys;
      const operand = (value as Record<string, unknown>)[operator ?? ""];
      const ok =
        keys.length === 1 &&
        ((operator === "prefix" && typeof operand === "string") ||
          (operator === "exists" && typeof operand === "boolean") ||
          (operator === "anything-but" && (typeof operand === "string" || (Array.isArray(operand) && operand.every((o) => typeof o === "string")))));
      if (!ok) throw new Error(`${where}.${field}: ${JSON.stringify(value)} is not supported by the twin's pattern matcher`);
    }
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** AWS's documented calculation: Time counts 14 bytes, the text fields their UTF-8 length. */
function entrySize(entry: PutEventsRequestEntry, resources: string[]): number {
  const bytes = (text: string | undefined) => (text ? Buffer.byteLength(text) : 0);
  return (
    (entry.Time !== undefined ? 14 : 0) + bytes(entry.Source) + bytes(entry.DetailType) + bytes(entry.Detail) + resources.reduce((n, r) => n + bytes(r), 0)
  );
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new EventBridgeRequestError("ValidationException", "Request size exceeds the limit."));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
