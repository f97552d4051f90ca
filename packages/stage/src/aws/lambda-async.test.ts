import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test, vi } from "vitest";
import type { Invoke, InvokeOutcome } from "../contracts";
import { FunctionNotFoundError, type InvocationRecord, LambdaAsync } from "./lambda-async";
import { Queues } from "./queues";

const DLQ = "arn:aws:sqs:us-east-1:000000000000:worker-dlq";
const ok = (result: unknown = null): InvokeOutcome => ({ ok: true, result, durationMs: 1, coldStart: false });
const boom = (message = "boom"): InvokeOutcome => ({ ok: false, errorType: "Error", errorMessage: message, durationMs: 1, coldStart: false });

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setup(invoke: Invoke, config: { maximumRetryAttempts?: number; maximumEventAgeInSeconds?: number; retryBaseDelayMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "twin-lambda-async-"));
  dirs.push(dir);
  const queues = new Queues({ dir, queues: [DLQ] });
  const lambda = new LambdaAsync({
    invoke,
    queues,
    retryBaseDelayMs: config.retryBaseDelayMs ?? 5,
    functions: [
      { name: "worker", maximumRetryAttempts: config.maximumRetryAttempts, maximumEventAgeInSeconds: config.maximumEventAgeInSeconds, onFailure: DLQ },
    ],
  });
  return { queues, lambda };
}

describe("asynchronous invocation", () => {
  test("is accepted before the function runs", async () => {
    const invoke = vi.fn<Invoke>(async () => ok());
    const { lambda } = setup(invoke);
    const accepted = lambda.invokeAsync("worker", { n: 1 });
    expect(accepted.statusCode).toBe(202);
    expect(invoke).not.toHaveBeenCalled();
    await lambda.idle();
    expect(invoke).toHaveBeenCalledWith("worker", { n: 1 });
    expect((await accepted.done).status).toBe("succeeded");
  });

  test("a function failing twice and then succeeding runs three times and leaves nothing in the queue", async () => {
    let calls = 0;
    const invoke = vi.fn<Invoke>(async () => (++calls <= 2 ? boom() : ok("done")));
    const { lambda, queues } = setup(invoke);
    const accepted = lambda.invokeAsync("arn:aws:lambda:us-east-1:000000000000:function:worker", { n: 1 });
    await lambda.idle();
    expect(invoke).toHaveBeenCalledTimes(3);
    const done = await accepted.done;
    expect(done.status).toBe("succeeded");
    expect(done.attempts).toHaveLength(3);
    expect(queues.messages(DLQ)).toEqual([]);
  });

  test("a function that always fails runs maximumRetryAttempts + 1 times, then one record lands on its destination", async () => {
    const invoke = vi.fn<Invoke>(async () => ({ ok: false, errorType: "TypeError", errorMessage: "x is undefined", durationMs: 1, coldStart: false }));
    const { lambda, queues } = setup(invoke, { retryBaseDelayMs: 20 });
    const payload = { detail: { id: "e-1" } };
    const accepted = lambda.invokeAsync("worker", payload);
    await lambda.idle();
    expect(invoke).toHaveBeenCalledTimes(3);
    for (const call of invoke.mock.calls) expect(call).toEqual(["worker", payload]);

    // Lambda waits 1 then 2 minutes; the twin the base delay and then twice it.
    const starts = (await accepted.done).attempts.map((a) => Date.parse(a.startedAt));
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(19);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(39);

    const messages = queues.messages(DLQ);
    expect(messages).toHaveLength(1);
    const record = JSON.parse(messages[0]!.body) as InvocationRecord;
    expect(record).toEqual({
      version: "1.0",
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      requestContext: {
        requestId: accepted.requestId,
        functionArn: "arn:aws:lambda:us-east-1:000000000000:function:worker:$LATEST",
        condition: "RetriesExhausted",
        approximateInvokeCount: 3,
      },
      requestPayload: payload,
      responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
      responsePayload: { errorType: "TypeError", errorMessage: "x is undefined" },
    });
    expect(messages[0]!.attributes["twin.source"]).toBe("lambda:on-failure");
    expect((await accepted.done).destination).toEqual({ queue: DLQ, messageId: messages[0]!.messageId });
  });

  test("retries stop where AWS's event age would be exceeded", async () => {
    // The first retry comes after a minute in AWS: with a 60 s maximum age there is none.
    const invoke = vi.fn<Invoke>(async () => boom());
    const { lambda, queues } = setup(invoke, { maximumEventAgeInSeconds: 60 });
    const accepted = lambda.invokeAsync("worker", {});
    await lambda.idle();
    expect(invoke).toHaveBeenCalledTimes(1);
    const record = JSON.parse(queues.messages(DLQ)[0]!.body) as InvocationRecord;
    expect(record.requestContext).toMatchObject({ condition: "EventAgeExceeded", approximateInvokeCount: 1 });
    expect((await accepted.done).condition).toBe("EventAgeExceeded");
  });

  test("maximumRetryAttempts 0 runs once; an Invoke that throws counts as a failed attempt", async () => {
    const invoke = vi.fn<Invoke>(async () => {
      throw Object.assign(new Error("process exited"), { name: "Runtime.ExitError" });
    });
    const { lambda, queues } = setup(invoke, { maximumRetryAttempts: 0 });
    lambda.invokeAsync("worker", {});
    await lambda.idle();
    expect(invoke).toHaveBeenCalledTimes(1);
    expect(JSON.parse(queues.messages(DLQ)[0]!.body).responsePayload).toEqual({ errorType: "Runtime.ExitError", errorMessage: "process exited" });
  });

  test("an unknown function is refused at once", () => {
    const { lambda } = setup(async () => ok());
    expect(() => lambda.invokeAsync("arn:aws:lambda:us-east-1:000000000000:function:nope", {})).toThrow(FunctionNotFoundError);
  });

  test("stop cancels pending retries", async () => {
    const invoke = vi.fn<Invoke>(async () => boom());
    const { lambda, queues } = setup(invoke, { retryBaseDelayMs: 10_000 });
    const accepted = lambda.invokeAsync("worker", {});
    await vi.waitFor(() => expect(invoke).toHaveBeenCalledTimes(1));
    await lambda.stop();
    expect((await accepted.done).status).toBe("stopped");
    expect(queues.messages(DLQ)).toEqual([]);
  });
});
