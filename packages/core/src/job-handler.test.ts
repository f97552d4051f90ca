import { afterEach, describe, expect, test } from "vitest";
import { createEvent, parseEvent } from "./events/envelope";
import { type EventBridgeEvent, eventBridgeHandler, scheduledHandler } from "./job-handler";
import type { DeliveryInfo, EventHandler } from "./jobs";
import { configureLog } from "./log";

/** An EventBridge delivery to a Lambda target, as AWS documents it (a foreign event). */
const sample: EventBridgeEvent = {
  version: "0",
  id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "EC2 Instance State-change Notification",
  source: "aws.ec2",
  account: "111122223333",
  time: "2017-12-22T18:43:48Z",
  region: "us-west-1",
  resources: ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
  detail: { instance_id: "i-1234567890abcdef0", state: "terminated" },
  "replay-name": "replay_archive",
} as EventBridgeEvent;
const envelope = createEvent(
  "user.registered",
  { userId: "0190a0a0-0000-7000-8000-000000000001", email: "secret-email@x.io", name: "N", role: "CUSTOMER" },
  { correlationId: "req-1", actor: null },
);
const delivery: EventBridgeEvent = { ...sample, source: "enclave.auth", "detail-type": "user.registered", detail: envelope };

function captureLog(): string[] {
  const lines: string[] = [];
  configureLog({ level: "info", sink: (line) => lines.push(line) });
  return lines;
}
afterEach(() => configureLog({ level: "error", sink: (line) => process.stdout.write(`${line}\n`) }));

describe("eventBridgeHandler", () => {
  test("hands the envelope to the subscriber and logs one line without the event data", async () => {
    const seen: [unknown, DeliveryInfo][] = [];
    const handler: EventHandler = async (event, info) => {
      seen.push([parseEvent(event, "user.registered"), info]);
    };
    const lines = captureLog();
    await eventBridgeHandler("profile-creator", async () => handler)(delivery);
    expect(seen).toEqual([[envelope, { attempt: 1 }]]);
    const logged = lines.map((l) => JSON.parse(l));
    expect(logged).toEqual([expect.objectContaining({ msg: "event handled", subscriber: "profile-creator", eventId: envelope.id, type: "user.registered" })]);
    expect(lines.join("\n")).not.toContain("secret-email");
  });

  test("rethrows when the subscriber fails, so EventBridge retries and then dead-letters", async () => {
    const lines = captureLog();
    const failing: EventHandler = async () => {
      throw new Error("downstream down");
    };
    await expect(eventBridgeHandler("s", async () => failing)(delivery)).rejects.toThrow("downstream down");
    expect(JSON.parse(lines.at(-1) ?? "{}")).toMatchObject({ level: "error", msg: "event handler failed", subscriber: "s", eventId: envelope.id });
  });

  test("an event that is not one of ours is an error, not silently dropped", async () => {
    const strict: EventHandler = async (event) => {
      parseEvent(event, "user.registered");
    };
    captureLog();
    await expect(eventBridgeHandler("s", async () => strict)(sample)).rejects.toThrow(/unparseable event envelope/);
  });
});

describe("scheduledHandler", () => {
  test("runs the job and returns its result", async () => {
    captureLog();
    const run = scheduledHandler("outbox-sweeper", async () => async () => ({ published: 2, failed: 0 }));
    await expect(run()).resolves.toEqual({ published: 2, failed: 0 });
  });
});
