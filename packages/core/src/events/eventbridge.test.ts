import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { uuidv7 } from "../ids";
import type { BusEntry } from "./bus";
import { createEvent } from "./envelope";
import { eventBridgeBus } from "./eventbridge";

interface WireEntry {
  Time: number;
  Source: string;
  DetailType: string;
  Detail: string;
  EventBusName: string;
}
interface Call {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  entries: WireEntry[];
}
type Answer = (entries: WireEntry[], call: number) => { status?: number; body: unknown };

function entry(): BusEntry {
  const userId = uuidv7();
  const detail = createEvent("user.registered", { userId, email: "a@b.io", name: "A", role: "CUSTOMER" }, { correlationId: "c", actor: null });
  return { source: "enclave.auth", detailType: detail.type, detail };
}
const entries = (n: number) => Array.from({ length: n }, entry);
const idOf = (wire: WireEntry) => (JSON.parse(wire.Detail) as { id: string }).id;
const ok = (wire: WireEntry[]) => ({ body: { FailedEntryCount: 0, Entries: wire.map(() => ({ EventId: uuidv7() })) } });

describe("eventBridgeBus against a local PutEvents endpoint", () => {
  let server: Server;
  let endpoint: string;
  let calls: Call[] = [];
  let answer: Answer = ok;

  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      request.on("end", () => {
        const parsed = JSON.parse(body || "{}") as { Entries?: WireEntry[] };
        calls.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, entries: parsed.Entries ?? [] });
        const { status = 200, body: out } = answer(parsed.Entries ?? [], calls.length);
        response.writeHead(status, { "content-type": "application/x-amz-json-1.1" }).end(JSON.stringify(out));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  afterEach(() => {
    calls = [];
    answer = ok;
  });

  const bus = (maxAttempts?: number) => eventBridgeBus({ busName: "enclave-test", endpoint, region: "us-east-1", ...(maxAttempts ? { maxAttempts } : {}) });

  test("sends PutEvents as the AWS JSON protocol, at most 10 entries a call", async () => {
    const sent = entries(25);
    expect(await bus().publish(sent)).toEqual({ failed: [] });
    expect(calls.map((c) => c.entries.length)).toEqual([10, 10, 5]);
    for (const call of calls) {
      expect(call.method).toBe("POST");
      expect(call.url).toBe("/");
      expect(call.headers["x-amz-target"]).toBe("AWSEvents.PutEvents");
      expect(call.headers["content-type"]).toBe("application/x-amz-json-1.1");
      expect(call.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=local\//);
    }
    const wire = calls.flatMap((c) => c.entries);
    expect(wire.map(idOf)).toEqual(sent.map((e) => e.detail.id));
    const [first] = wire;
    expect(first).toEqual({
      Source: "enclave.auth",
      DetailType: "user.registered",
      Detail: expect.any(String),
      EventBusName: "enclave-test",
      // Epoch seconds (the SDK keeps the milliseconds as a fraction).
      Time: Date.parse(sent[0]!.detail.occurredAt) / 1000,
    });
    expect(JSON.parse(first!.Detail)).toEqual(sent[0]!.detail);
  });

  test("after a partial failure only the failed entries are sent again", async () => {
    const sent = entries(4);
    answer = (wire, call) =>
      call === 1
        ? {
            body: {
              FailedEntryCount: 2,
              Entries: wire.map((_, i) => (i === 1 || i === 3 ? { ErrorCode: "InternalFailure", ErrorMessage: "try again" } : { EventId: uuidv7() })),
            },
          }
        : ok(wire);
    expect(await bus().publish(sent)).toEqual({ failed: [] });
    expect(calls).toHaveLength(2);
    expect(calls[1]!.entries.map(idOf)).toEqual([sent[1]!.detail.id, sent[3]!.detail.id]);
  });

  test("entries that keep failing are reported in `failed` with the last error; the others are not", async () => {
    const sent = entries(12);
    const poisoned = new Set([sent[2]!.detail.id, sent[11]!.detail.id]);
    answer = (wire) => ({
      body: {
        FailedEntryCount: wire.filter((w) => poisoned.has(idOf(w))).length,
        Entries: wire.map((w) => (poisoned.has(idOf(w)) ? { ErrorCode: "ThrottlingException", ErrorMessage: "Rate exceeded" } : { EventId: uuidv7() })),
      },
    });
    const result = await bus(3).publish(sent);
    expect(result.failed).toEqual([
      { id: sent[2]!.detail.id, error: "ThrottlingException: Rate exceeded" },
      { id: sent[11]!.detail.id, error: "ThrottlingException: Rate exceeded" },
    ]);
    // Batch 1: 10 entries, then the poisoned one twice; batch 2: 2 entries, then the poisoned one twice.
    expect(calls.map((c) => c.entries.length)).toEqual([10, 1, 1, 2, 1, 1]);
  });

  test("a request the service rejects fails every entry of the batch", async () => {
    answer = () => ({ status: 400, body: { __type: "ValidationException", message: "bad" } });
    const sent = entries(2);
    const result = await bus(2).publish(sent);
    expect(result.failed.map((f) => f.id)).toEqual(sent.map((e) => e.detail.id));
    expect(result.failed[0]?.error).toMatch(/ValidationException/);
    expect(calls).toHaveLength(2);
  });

  test("publishing nothing makes no call", async () => {
    expect(await bus().publish([])).toEqual({ failed: [] });
    expect(calls).toEqual([]);
  });
});

describe("eventBridgeBus with a mocked SDK client", () => {
  // Created when this block starts: mocking patches every EventBridgeClient, also the one above.
  const createMock = () => mockClient(EventBridgeClient);
  let mock: ReturnType<typeof createMock>;
  beforeAll(() => {
    mock = createMock();
  });
  afterEach(() => mock.reset());
  afterAll(() => mock.restore());

  const bus = () => eventBridgeBus({ busName: "enclave-test", region: "us-east-1", client: new EventBridgeClient({ region: "us-east-1" }) });

  test("splits into calls of at most 10 and sends the bus name", async () => {
    mock.on(PutEventsCommand).callsFake((input: { Entries: unknown[] }) => ({ FailedEntryCount: 0, Entries: input.Entries.map(() => ({ EventId: "e" })) }));
    const sent = entries(25);
    expect(await bus().publish(sent)).toEqual({ failed: [] });
    const inputs = mock.commandCalls(PutEventsCommand).map((c) => c.args[0].input);
    expect(inputs.map((i) => i.Entries?.length)).toEqual([10, 10, 5]);
    expect(inputs.flatMap((i) => i.Entries ?? []).every((e) => e.EventBusName === "enclave-test")).toBe(true);
  });

  test("resends only failed entries, and reports those that never succeed", async () => {
    const sent = entries(3);
    const stuck = sent[0]!.detail.id;
    mock.on(PutEventsCommand).callsFake((input: { Entries: { Detail: string }[] }) => ({
      FailedEntryCount: 1,
      Entries: input.Entries.map((e) => (JSON.parse(e.Detail).id === stuck ? { ErrorCode: "InternalFailure", ErrorMessage: "x" } : { EventId: "ok" })),
    }));
    const result = await bus().publish(sent);
    expect(result.failed).toEqual([{ id: stuck, error: "InternalFailure: x" }]);
    const sizes = mock.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries?.length);
    expect(sizes).toEqual([3, 1, 1]);
  });

  test("a thrown SDK error fails the whole batch after the retries, without throwing", async () => {
    mock.on(PutEventsCommand).rejects(Object.assign(new Error("socket hang up"), { name: "TimeoutError" }));
    const sent = entries(2);
    const result = await bus().publish(sent);
    expect(result.failed).toEqual(sent.map((e) => ({ id: e.detail.id, error: "TimeoutError" })));
    expect(mock.commandCalls(PutEventsCommand)).toHaveLength(3);
  });

  test("a response without entry results counts as failed, not sent", async () => {
    mock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });
    const sent = entries(1);
    const result = await bus().publish(sent);
    expect(result.failed).toEqual([{ id: sent[0]!.detail.id, error: "NoResult: no entry result" }]);
  });
});
