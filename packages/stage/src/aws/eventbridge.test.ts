import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { eventBridgeBus } from "@enclave/core/events/eventbridge";
import { afterEach, describe, expect, test, vi } from "vitest";
import type { Invoke, InvokeOutcome } from "../contracts";
import { type BusEvent, EventBridge, type RuleSpec } from "./eventbridge";
import { LambdaAsync } from "./lambda-async";
import { Queues } from "./queues";

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, "../../../../fixtures/eventbridge-event.sample.json"), "utf8"));
const account = "111122223333";
const scope = { region: "us-east-1", account };
const fn = (name: string) => `arn:aws:lambda:us-east-1:${account}:function:${name}`;
const dlq = (name: string) => `arn:aws:sqs:us-east-1:${account}:${name}`;
const ok: InvokeOutcome = { ok: true, result: null, durationMs: 1, coldStart: false };

const profileRule: RuleSpec = {
  name: "profile-user-registered",
  eventBusName: "app-bus",
  eventPattern: JSON.stringify({ source: ["enclave.auth"], "detail-type": ["user.registered"] }),
  targets: [{ arn: fn("profile-on-registered"), retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 }, deadLetterArn: dlq("profile-dlq") }],
};
const adminRule: RuleSpec = {
  name: "admin-audit",
  eventBusName: `arn:aws:events:us-east-1:${account}:event-bus/app-bus`,
  eventPattern: { source: [{ prefix: "enclave." }] },
  targets: [{ arn: fn("admin-audit"), deadLetterArn: dlq("admin-dlq") }],
};
const paymentsRule: RuleSpec = {
  name: "payments-only",
  eventBusName: "app-bus",
  eventPattern: { source: ["enclave.payments"] },
  targets: [{ arn: fn("payments-worker") }],
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { invoke?: Invoke; functions?: string[]; rules?: RuleSpec[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "twin-eventbridge-"));
  const invoke = vi.fn<Invoke>(options.invoke ?? (async () => ok));
  const queues = new Queues({ dir, scope });
  const lambda = new LambdaAsync({
    invoke,
    queues,
    scope,
    retryBaseDelayMs: 2,
    functions: (options.functions ?? ["profile-on-registered", "admin-audit", "payments-worker"]).map((name) => ({ name })),
  });
  const bridge = new EventBridge({ lambda, queues, scope, rules: options.rules ?? [profileRule, adminRule, paymentsRule], retryBaseDelayMs: 2 });
  const endpoint = await bridge.listen();
  const client = new EventBridgeClient({ endpoint, region: "us-east-1", credentials: { accessKeyId: "twin", secretAccessKey: "twin" }, maxAttempts: 1 });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => bridge.close());
  cleanups.push(() => client.destroy());
  return { invoke, queues, lambda, bridge, endpoint, client };
}

const entry = (over: Record<string, unknown> = {}) => ({
  Source: "enclave.auth",
  DetailType: "user.registered",
  Detail: JSON.stringify({ id: "e-1", type: "user.registered", data: { userId: "u-1" } }),
  EventBusName: "app-bus",
  ...over,
});

describe("PutEvents through the AWS SDK", () => {
  test("answers per entry, with a partial failure as HTTP 200 and FailedEntryCount", async () => {
    const { client, bridge } = await setup();
    const response = await client.send(
      new PutEventsCommand({
        Entries: [
          entry(),
          entry({ Detail: "[1,2]" }),
          entry({ Source: undefined }),
          entry({ EventBusName: "no-such-bus" }),
          entry({ Detail: JSON.stringify({ pad: "x".repeat(1024 * 1024) }) }),
          entry({ DetailType: "user.role_changed" }),
        ],
      }),
    );
    expect(response.$metadata.httpStatusCode).toBe(200);
    expect(response.FailedEntryCount).toBe(4);
    const [good, malformed, noSource, noBus, tooBig, alsoGood] = response.Entries!;
    expect(good!.EventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(alsoGood!.EventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(malformed).toEqual({ ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." });
    expect(noSource).toMatchObject({ ErrorCode: "InvalidArgument", ErrorMessage: expect.stringContaining("Source") });
    expect(noBus).toMatchObject({ ErrorCode: "ResourceNotFoundException" });
    expect(tooBig).toMatchObject({ ErrorCode: "InvalidArgument", ErrorMessage: expect.stringContaining("limit") });
    expect(bridge.entries().map((e) => e.eventId)).toEqual([good!.EventId, alsoGood!.EventId]);
  });

  test("more than 10 entries is a ValidationException for the whole call", async () => {
    const { client, bridge } = await setup();
    const error = await client.send(new PutEventsCommand({ Entries: Array.from({ length: 11 }, () => entry()) })).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "ValidationException", $metadata: { httpStatusCode: 400 } });
    expect((error as Error).message).toMatch(/less than or equal to 10/);
    expect(bridge.entries()).toEqual([]);
  });

  test("an unknown operation is refused", async () => {
    const { endpoint } = await setup();
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "x-amz-target": "AWSEvents.PutRule", "content-type": "application/x-amz-json-1.1" },
      body: "{}",
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ __type: "UnknownOperationException" });
  });

  test("injected InternalFailure entries are resent by the application's publisher, and only those", async () => {
    const { bridge, endpoint, lambda } = await setup();
    const bus = eventBridgeBus({ busName: "app-bus", endpoint, region: "us-east-1" });
    bridge.failNextEntries(2);
    const envelopes = [1, 2, 3].map((n) => ({
      id: `0190f3b4-0000-7000-8000-00000000000${n}`,
      type: "user.registered",
      version: 1,
      occurredAt: "2026-03-01T10:00:00.750Z",
      data: { userId: `u-${n}` },
      metadata: { correlationId: "c", actor: null },
    }));
    const result = await bus.publish(envelopes.map((detail) => ({ source: "enclave.auth", detailType: "user.registered", detail })));
    expect(result.failed).toEqual([]);
    // Two failed on the first call and came back on the second: each accepted exactly once.
    expect(bridge.entries().map((e) => (e.detail as { id: string }).id)).toEqual([envelopes[2]!.id, envelopes[0]!.id, envelopes[1]!.id]);
    await bridge.idle();
    await lambda.idle();
  });
});

describe("delivery", () => {
  test("only rules whose pattern matches deliver, with the event as EventBridge builds it", async () => {
    const { client, bridge, invoke } = await setup();
    const response = await client.send(new PutEventsCommand({ Entries: [{ ...entry(), Time: new Date("2026-03-01T10:00:00.750Z"), Resources: ["arn:x"] }] }));
    await bridge.idle();

    const calls = invoke.mock.calls.map(([name]) => name).sort();
    expect(calls).toEqual(["admin-audit", "profile-on-registered"]);
    const event = invoke.mock.calls[0]![1] as BusEvent;
    expect(event).toEqual({
      version: "0",
      id: response.Entries![0]!.EventId,
      "detail-type": "user.registered",
      source: "enclave.auth",
      account,
      time: "2026-03-01T10:00:00Z",
      region: "us-east-1",
      resources: ["arn:x"],
      detail: { id: "e-1", type: "user.registered", data: { userId: "u-1" } },
    });
    // The fixture is a replayed event: `replay-name` is the one key a live event does not have.
    expect(Object.keys(event).sort()).toEqual(
      Object.keys(fixture)
        .filter((k) => k !== "replay-name")
        .sort(),
    );
    expect(bridge.entries()[0]!.matchedRules.sort()).toEqual(["admin-audit", "profile-user-registered"]);
    expect(bridge.deliveries().map((d) => [d.rule, d.outcome, d.attempts, d.invocation])).toEqual(
      expect.arrayContaining([
        ["profile-user-registered", "delivered", 1, "succeeded"],
        ["admin-audit", "delivered", 1, "succeeded"],
      ]),
    );
  });

  test("a disabled rule delivers nothing", async () => {
    const { client, bridge, invoke } = await setup({ rules: [{ ...profileRule, state: "DISABLED" }] });
    await client.send(new PutEventsCommand({ Entries: [entry()] }));
    await bridge.idle();
    expect(invoke).not.toHaveBeenCalled();
  });

  test("a target function that does not exist is dead-lettered at once; a redrive delivers it once the function exists", async () => {
    const { client, bridge, queues, lambda, invoke } = await setup({ functions: ["admin-audit"] });
    await client.send(new PutEventsCommand({ Entries: [entry()] }));
    await bridge.idle();

    const delivery = bridge.deliveries().find((d) => d.rule === "profile-user-registered")!;
    expect(delivery).toMatchObject({ outcome: "dead-lettered", attempts: 1, errorCode: "RESOURCE_NOT_FOUND" });
    const [message] = queues.messages("profile-dlq");
    expect(message!.attributes).toMatchObject({
      RULE_ARN: `arn:aws:events:us-east-1:${account}:rule/app-bus/profile-user-registered`,
      TARGET_ARN: fn("profile-on-registered"),
      ERROR_CODE: "RESOURCE_NOT_FOUND",
      RETRY_ATTEMPTS: "0",
      "twin.source": "events:dead-letter",
    });
    expect(JSON.parse(message!.body)).toMatchObject({ id: delivery.eventId, source: "enclave.auth", detail: { id: "e-1" } });

    expect((await queues.redrive("profile-dlq", { lambda, eventBridge: bridge }))[0]).toMatchObject({ kind: "eventbridge-dead-letter", outcome: "failed" });
    expect(queues.messages("profile-dlq")).toHaveLength(1);

    lambda.setFunctions([{ name: "admin-audit" }, { name: "profile-on-registered" }]);
    expect((await queues.redrive("profile-dlq", { lambda, eventBridge: bridge }))[0]).toMatchObject({ outcome: "succeeded" });
    await bridge.idle();
    expect(queues.messages("profile-dlq")).toEqual([]);
    expect(invoke).toHaveBeenCalledWith("profile-on-registered", JSON.parse(message!.body));
  });

  test("retryable hand-over failures follow the target's retry policy, then go to its dead-letter queue", async () => {
    const { client, bridge, queues, invoke } = await setup({ rules: [profileRule] });
    bridge.failNextDeliveries(3);
    await client.send(new PutEventsCommand({ Entries: [entry()] }));
    await bridge.idle();
    expect(invoke).not.toHaveBeenCalled();
    expect(bridge.deliveries()[0]).toMatchObject({ outcome: "dead-lettered", attempts: 3, errorCode: "THROTTLING" });
    expect(queues.messages("profile-dlq")[0]!.attributes).toMatchObject({ RETRY_ATTEMPTS: "2", EXHAUSTED_RETRY_CONDITION: "MaximumRetryAttempts" });

    bridge.failNextDeliveries(2);
    await client.send(new PutEventsCommand({ Entries: [entry()] }));
    await bridge.idle();
    expect(bridge.deliveries()[1]).toMatchObject({ outcome: "delivered", attempts: 3, invocation: "succeeded" });
    expect(invoke).toHaveBeenCalledTimes(1);
  });

  test("a function error is Lambda's to retry and record, not EventBridge's", async () => {
    const invoke: Invoke = async () => ({ ok: false, errorType: "Error", errorMessage: "db down", durationMs: 1, coldStart: false });
    const { client, bridge, queues, lambda } = await setup({ invoke, rules: [profileRule] });
    lambda.setFunctions([{ name: "profile-on-registered", onFailure: dlq("profile-dlq") }]);
    await client.send(new PutEventsCommand({ Entries: [entry()] }));
    await bridge.idle();
    expect(bridge.deliveries()[0]).toMatchObject({ outcome: "delivered", attempts: 1, invocation: "failed" });
    const [message] = queues.messages("profile-dlq");
    expect(message!.attributes["twin.source"]).toBe("lambda:on-failure");
    expect(JSON.parse(message!.body).requestContext.approximateInvokeCount).toBe(3);
  });

  test("patterns the matcher cannot honour are refused", () => {
    const queues = { send: () => ({ messageId: "", body: "", attributes: {}, sentAt: "" }) };
    const lambda = { invokeAsync: () => ({}) as never, idle: async () => {} };
    for (const eventPattern of [{ source: [{ suffix: ".auth" }] }, { detail: { amount: [{ numeric: [">", 0] }] } }, { $or: [] }])
      expect(() => new EventBridge({ lambda, queues, rules: [{ name: "r", eventPattern: eventPattern as never, targets: [] }] })).toThrow(/not supported/);
  });
});
