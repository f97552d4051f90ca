import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEvent, type EventEnvelope, uuidv7 } from "@enclave/core";
import { afterEach, describe, expect, test } from "vitest";
import { LocalBus, listDeliveries } from "./bus";
import { closedPort, runCli } from "./cli.testing";

/**
 * `npm run events:dlq` and `npm run events:redrive` as a developer runs them: a separate process
 * reading DATA_DIR, with or without `npm run dev` running.
 */

const onRegistered = { source: ["enclave.auth"], "detail-type": ["user.registered"] };
const registered = () => {
  const userId = uuidv7();
  return createEvent("user.registered", { userId, email: `${userId}@example.com`, name: "U", role: "CUSTOMER" }, { correlationId: "c", actor: null });
};

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** A DATA_DIR whose bus holds `count` dead letters of the profile subscriber. */
async function dataDirWithDeadLetters(count: number) {
  const dataDir = mkdtempSync(join(tmpdir(), "enclave-cli-"));
  cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const busDir = join(dataDir, "local", "bus");
  const bus = new LocalBus({ dir: busDir, maxAttempts: 2, baseDelayMs: 1 });
  bus.subscribe({
    name: "profile.on-user-registered",
    pattern: onRegistered,
    handler: async () => {
      throw new Error("profile store unavailable");
    },
  });
  for (let i = 0; i < count; i++) await bus.publish([{ source: "enclave.auth", detailType: "user.registered", detail: registered() }]);
  await bus.drain();
  await bus.close();
  return { dataDir, busDir };
}

const cli = (args: string[], env: Record<string, string>) => runCli(args, { STAGE: "local", LOG_LEVEL: "error", ...env });

describe("npm run events:dlq", { timeout: 90_000 }, () => {
  test("lists each dead letter with its event type, subscriber, attempts and last error", async () => {
    const { dataDir, busDir } = await dataDirWithDeadLetters(2);
    const dead = listDeliveries(join(busDir, "dlq"));
    const result = await cli(["dlq"], { DATA_DIR: dataDir });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    for (const delivery of dead) {
      expect(result.stdout).toContain(`${delivery.id}  user.registered  → profile.on-user-registered  attempts=2  Error: profile store unavailable`);
    }
  });

  test("says so when there are none", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "enclave-cli-"));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const result = await cli(["dlq"], { DATA_DIR: dataDir });
    expect([result.code, result.stdout]).toEqual([0, "no dead-lettered events\n"]);
  });
});

describe("npm run events:redrive", { timeout: 90_000 }, () => {
  test("without a running server: queues the dead letters with fresh attempts; the next start delivers them", async () => {
    const { dataDir, busDir } = await dataDirWithDeadLetters(2);
    const [first] = listDeliveries(join(busDir, "dlq"));
    const result = await cli(["redrive", first!.id], { DATA_DIR: dataDir, PORT: String(await closedPort()) });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe("queued 1 event(s); they are delivered when `npm run dev` starts\n");
    expect(listDeliveries(join(busDir, "dlq"))).toHaveLength(1);
    const [queued] = listDeliveries(join(busDir, "pending"));
    expect(queued).toEqual({ id: first!.id, subscriber: first!.subscriber, event: first!.event, attempts: 0 });
    expect(readdirSync(join(busDir, "pending")).every((name) => name.endsWith(".json"))).toBe(true);

    // The next start: the queued delivery gets the whole retry policy, like a redrive in-process.
    const bus = new LocalBus({ dir: busDir, maxAttempts: 2, baseDelayMs: 1 });
    const seen: { event: EventEnvelope; attempt: number }[] = [];
    bus.subscribe({
      name: "profile.on-user-registered",
      pattern: onRegistered,
      handler: async (event, { attempt }) => {
        seen.push({ event, attempt });
        if (attempt === 1) throw new Error("still warming up");
      },
    });
    expect(bus.recover()).toBe(1);
    await bus.drain();
    await bus.close();
    expect(seen.map((s) => [s.event.id, s.attempt])).toEqual([
      [first!.event.detail.id, 1],
      [first!.event.detail.id, 2],
    ]);
    expect(listDeliveries(join(busDir, "pending"))).toEqual([]);

    const rest = await cli(["redrive"], { DATA_DIR: dataDir, PORT: String(await closedPort()) });
    expect(rest.stdout).toBe("queued 1 event(s); they are delivered when `npm run dev` starts\n");
    expect(listDeliveries(join(busDir, "dlq"))).toEqual([]);
  });

  test("with a server running: asks it to redrive (all, or the ids given) and reports its answer", async () => {
    const requests: { method?: string; url?: string; body: unknown }[] = [];
    let answer = { status: 200, body: { redriven: 2 } as unknown };
    const server: Server = createServer((req, res) => {
      let text = "";
      req.on("data", (chunk) => (text += chunk));
      req.on("end", () => {
        requests.push({ method: req.method, url: req.url, body: JSON.parse(text) });
        res.writeHead(answer.status, { "content-type": "application/json" });
        res.end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    cleanup.push(() => new Promise((done) => server.close(done)));
    const env = { DATA_DIR: join(tmpdir(), "enclave-cli-unused"), PORT: String((server.address() as AddressInfo).port) };

    const all = await cli(["redrive"], env);
    expect([all.code, all.stdout]).toEqual([0, "redriven 2 event(s) through the running server\n"]);
    const some = await cli(["redrive", "a.b", "c.d"], env);
    expect(some.code).toBe(0);
    expect(requests).toEqual([
      { method: "POST", url: "/_local/events/redrive", body: {} },
      { method: "POST", url: "/_local/events/redrive", body: { ids: ["a.b", "c.d"] } },
    ]);

    // A server that refuses: say so and fail, rather than report "redriven undefined".
    answer = { status: 400, body: { error: { code: "validation_failed", message: "no" } } };
    const refused = await cli(["redrive"], env);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain("validation_failed");
  });
});
