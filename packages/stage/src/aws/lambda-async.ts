import { randomUUID } from "node:crypto";
import type { Invoke, InvokeOutcome } from "../contracts";
import { type AwsScope, DEFAULT_SCOPE, functionName, lambdaArn } from "./arn";
import { type MessageSource, type Queues, SOURCE_ATTRIBUTE } from "./queues";
import { Sleeps } from "./sleeps";

/**
 * Lambda's asynchronous invocation (InvocationType Event), which is how EventBridge rules and
 * Scheduler reach a function: the call is accepted at once (202), the function runs later, a
 * function error is retried, and what still fails becomes an invocation record on the function's
 * on-failure destination. Everything runs in this process; the function itself runs through
 * `Invoke`.
 */

/** A function's asynchronous invocation settings (its FunctionEventInvokeConfig). */
export interface AsyncFunctionConfig {
  /** Physical name: what `Invoke` takes. */
  name: string;
  /** Defaults to the ARN built from the name; only used in records and for lookups by ARN. */
  arn?: string;
  /** 0..2; Lambda's default is 2. */
  maximumRetryAttempts?: number;
  /** 60..21600; Lambda's default is 21600 (6 hours). */
  maximumEventAgeInSeconds?: number;
  /** Queue ARN (or name) for the record of an invocation that finally failed. */
  onFailure?: string;
  /** Queue ARN (or name) for the record of a successful invocation. */
  onSuccess?: string;
}

export type FailureCondition = "RetriesExhausted" | "EventAgeExceeded";

/** What Lambda sends to a destination, field for field. */
export interface InvocationRecord {
  version: "1.0";
  timestamp: string;
  requestContext: { requestId: string; functionArn: string; condition: FailureCondition | "Success"; approximateInvokeCount: number };
  requestPayload: unknown;
  responseContext: { statusCode: 200; executedVersion: "$LATEST"; functionError?: "Unhandled" };
  responsePayload: unknown;
}

export interface AsyncAttempt {
  startedAt: string;
  outcome: InvokeOutcome;
}

/** One accepted invocation, from acceptance to its end (the twin's log of Lambda's event queue). */
export interface AsyncInvocation {
  requestId: string;
  functionName: string;
  payload: unknown;
  acceptedAt: string;
  status: "running" | "retrying" | "succeeded" | "failed" | "stopped";
  attempts: AsyncAttempt[];
  lastError?: { errorType: string; errorMessage: string };
  condition?: FailureCondition;
  /** Where its record went, when it went anywhere. */
  destination?: { queue: string; messageId: string };
  finishedAt?: string;
}

export interface AcceptedInvocation {
  requestId: string;
  statusCode: 202;
  /** Settles (never rejects) when Lambda is done with the event: success, or retries given up. */
  done: Promise<AsyncInvocation>;
}

export interface InvokeAsyncOptions {
  /** False for a redrive: its failure is reported to the caller instead of recorded a second time. */
  destinations?: boolean;
}

/** Lambda's answer to an asynchronous invoke of a function that does not exist; not retried by EventBridge or Scheduler. */
export class FunctionNotFoundError extends Error {
  override readonly name = "ResourceNotFoundException";
  constructor(readonly ref: string) {
    super(`Function not found: ${ref}`);
  }
}

export interface LambdaAsyncOptions {
  invoke: Invoke;
  queues: Pick<Queues, "send">;
  functions?: AsyncFunctionConfig[];
  scope?: AwsScope;
  /** Wait before the first retry, doubled for the second (Lambda waits 1 then 2 minutes). Default 200 ms. */
  retryBaseDelayMs?: number;
  /** Test seam for event age. */
  now?: () => number;
  /** Invocations kept for `invocations()`; older ones are forgotten. Default 1000. */
  logLimit?: number;
}

// Lambda's waits before the second and third attempt. The twin waits less, but ages the event as
// if it had waited this long, so `maximumEventAgeInSeconds` ends retries where AWS would.
const AWS_RETRY_DELAYS_MS = [60_000, 120_000];

export class LambdaAsync {
  private readonly functions = new Map<string, AsyncFunctionConfig>();
  private readonly log: AsyncInvocation[] = [];
  private readonly inFlight = new Set<Promise<AsyncInvocation>>();
  private readonly sleeps = new Sleeps();
  private readonly scope: AwsScope;
  private readonly baseDelayMs: number;
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly options: LambdaAsyncOptions) {
    this.scope = options.scope ?? DEFAULT_SCOPE;
    this.baseDelayMs = options.retryBaseDelayMs ?? 200;
    this.now = options.now ?? Date.now;
    this.setFunctions(options.functions ?? []);
  }

  /** Replaces the known functions; invocations under way keep the settings they started with. */
  setFunctions(functions: AsyncFunctionConfig[]) {
    this.functions.clear();
    for (const fn of functions) this.functions.set(fn.name, fn);
  }

  /** The function a name or ARN refers to, if the stage has it. */
  resolve(ref: string): AsyncFunctionConfig | undefined {
    return this.functions.get(functionName(ref));
  }

  /**
   * Accepts an event for a function (by name or ARN) and returns at once, as Lambda's 202 does;
   * the function runs right after. Throws FunctionNotFoundError for a function the stage does not
   * have, which is the one failure the caller (EventBridge, Scheduler) sees.
   */
  invokeAsync(ref: string, payload: unknown, options: InvokeAsyncOptions = {}): AcceptedInvocation {
    if (this.stopped) throw Object.assign(new Error("the twin's Lambda service is stopping"), { name: "ServiceException" });
    const fn = this.resolve(ref);
    if (!fn) throw new FunctionNotFoundError(ref);
    const invocation: AsyncInvocation = {
      requestId: randomUUID(),
      functionName: fn.name,
      // The function gets JSON, not the caller's object: what it mutates is its own copy.
      payload: payload === undefined ? {} : JSON.parse(JSON.stringify(payload)),
      acceptedAt: new Date(this.now()).toISOString(),
      status: "running",
      attempts: [],
    };
    this.log.push(invocation);
    if (this.log.length > (this.options.logLimit ?? 1000)) this.log.shift();
    const done = this.run(fn, invocation, options.destinations !== false);
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return { requestId: invocation.requestId, statusCode: 202, done };
  }

  /** Accepted invocations, oldest first (bounded by `logLimit`). */
  invocations(): readonly AsyncInvocation[] {
    return this.log;
  }

  /** Resolves when no invocation is running or waiting for a retry. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Cancels pending retries (those invocations end as `stopped`) and refuses new invocations. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.sleeps.cancelAll();
    await this.idle();
  }

  private async run(fn: AsyncFunctionConfig, invocation: AsyncInvocation, destinations: boolean): Promise<AsyncInvocation> {
    const maxRetries = fn.maximumRetryAttempts ?? 2;
    const maxAgeMs = (fn.maximumEventAgeInSeconds ?? 21_600) * 1000;
    const accepted = this.now();
    // The event's age as AWS would see it: time spent running attempts plus AWS's own waits
    // (measured sleeps are replaced by those, so a timer firing a millisecond early changes nothing).
    let sleptMs = 0;
    let awsWaitedMs = 0;
    // Lambda answers 202 before running anything: the caller's own code goes first.
    await Promise.resolve();
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(fn.name, invocation);
      if (outcome.ok) {
        invocation.status = "succeeded";
        if (destinations && fn.onSuccess) this.record(fn, invocation, fn.onSuccess, "Success", outcome.result);
        return this.finish(invocation);
      }
      invocation.lastError = { errorType: outcome.errorType, errorMessage: outcome.errorMessage };
      let condition: FailureCondition | undefined = attempt > maxRetries ? "RetriesExhausted" : undefined;
      if (!condition) {
        const delay = this.baseDelayMs * 2 ** (attempt - 1);
        sleptMs += delay;
        awsWaitedMs += AWS_RETRY_DELAYS_MS[attempt - 1] ?? AWS_RETRY_DELAYS_MS.at(-1)!;
        invocation.status = "retrying";
        if (!(await this.sleeps.sleep(delay))) {
          invocation.status = "stopped";
          return this.finish(invocation);
        }
        if (Math.max(0, this.now() - accepted - sleptMs) + awsWaitedMs >= maxAgeMs) condition = "EventAgeExceeded";
      }
      if (condition) {
        invocation.status = "failed";
        invocation.condition = condition;
        if (destinations && fn.onFailure) this.record(fn, invocation, fn.onFailure, condition, invocation.lastError);
        return this.finish(invocation);
      }
      invocation.status = "running";
    }
  }

  private async attempt(name: string, invocation: AsyncInvocation): Promise<InvokeOutcome> {
    const startedAt = new Date(this.now()).toISOString();
    let outcome: InvokeOutcome;
    try {
      outcome = await this.options.invoke(name, structuredClone(invocation.payload));
    } catch (error) {
      // The runtime could not run the function at all: Lambda counts that as a failed attempt too.
      outcome = {
        ok: false,
        errorType: (error as Error).name || "Error",
        errorMessage: (error as Error).message ?? String(error),
        durationMs: 0,
        coldStart: false,
      };
    }
    invocation.attempts.push({ startedAt, outcome });
    return outcome;
  }

  private record(fn: AsyncFunctionConfig, invocation: AsyncInvocation, queue: string, condition: FailureCondition | "Success", responsePayload: unknown) {
    const failed = condition !== "Success";
    const record: InvocationRecord = {
      version: "1.0",
      timestamp: new Date(this.now()).toISOString(),
      requestContext: {
        requestId: invocation.requestId,
        functionArn: `${fn.arn ?? lambdaArn(this.scope, fn.name)}:$LATEST`,
        condition,
        approximateInvokeCount: invocation.attempts.length,
      },
      requestPayload: invocation.payload,
      responseContext: failed ? { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" } : { statusCode: 200, executedVersion: "$LATEST" },
      responsePayload: responsePayload ?? null,
    };
    try {
      const message = this.options.queues.send(queue, JSON.stringify(record), {
        [SOURCE_ATTRIBUTE]: (failed ? "lambda:on-failure" : "lambda:on-success") satisfies MessageSource,
      });
      invocation.destination = { queue, messageId: message.messageId };
    } catch {
      // Lambda drops a record it cannot deliver (DestinationDeliveryFailures); `destination` stays unset.
    }
  }

  private finish(invocation: AsyncInvocation): AsyncInvocation {
    invocation.finishedAt = new Date(this.now()).toISOString();
    return invocation;
  }
}
