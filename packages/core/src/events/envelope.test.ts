import { describe, expect, test } from "vitest";
import { uuidPattern, uuidv7 } from "../ids";
import { eventCatalog, eventTypes } from "./catalog";
import { createEvent, eventSource, parseEvent, UnknownEventError } from "./envelope";

const userId = uuidv7();
const registered = () => createEvent("user.registered", { userId, email: "a@b.io", name: "A", role: "CUSTOMER" }, { correlationId: "req-9", actor: null });
/** What a consumer receives: the envelope after a trip through JSON on the bus. */
const wire = (value: unknown) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

describe("createEvent", () => {
  test("builds the API.md envelope with a new time-ordered id", () => {
    const now = new Date("2026-11-01T10:00:00.000Z");
    const event = createEvent("user.role_changed", { userId, from: "CUSTOMER", to: "ADMIN" }, { correlationId: "req-1", actor: userId }, now);
    expect(event).toEqual({
      id: expect.stringMatching(uuidPattern),
      type: "user.role_changed",
      version: 1,
      occurredAt: "2026-11-01T10:00:00.000Z",
      data: { userId, from: "CUSTOMER", to: "ADMIN" },
      metadata: { correlationId: "req-1", actor: userId },
    });
    expect(event.id[14]).toBe("7");
    expect(createEvent("config.changed", { key: "k" }, { correlationId: "c", actor: null }).id).not.toBe(event.id);
  });

  test("refuses data that does not match the contract", () => {
    const badRole = { userId, email: "a@b.io", name: "A", role: "ROOT" } as never;
    expect(() => createEvent("user.registered", badRole, { correlationId: "c", actor: null })).toThrow(/user.registered does not match its contract/);
    // Money is a decimal string, never a number.
    const numericAmount = { paymentId: userId, senderId: userId, recipientId: userId, amount: 12.5, currency: "USD", status: "pending" } as never;
    expect(() => createEvent("payment.created", numericAmount, { correlationId: "c", actor: null })).toThrow(/payment.created does not match its contract/);
  });

  test("the source is <app>.<service>", () => {
    expect(eventSource("enclave", "auth")).toBe("enclave.auth");
  });

  test("every catalog type has version 1 and a data schema", () => {
    expect(eventTypes.sort()).toEqual(
      [
        "config.changed",
        "payment.cancelled",
        "payment.completed",
        "payment.created",
        "payment.failed",
        "profile.created",
        "profile.updated",
        "user.registered",
        "user.role_changed",
      ].sort(),
    );
    for (const type of eventTypes) expect(eventCatalog[type].version).toBe(1);
  });
});

describe("parseEvent", () => {
  test("accepts a valid envelope after a trip through JSON", () => {
    const event = registered();
    expect(parseEvent(wire(event))).toEqual(event);
    expect(parseEvent(wire(event), "user.registered").data.email).toBe("a@b.io");
    expect(parseEvent(wire(event), "user.registered", "user.role_changed").type).toBe("user.registered");
  });

  test("rejects unknown types, also names inherited from Object", () => {
    for (const type of ["user.deleted", "USER.REGISTERED", "constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const detail = { ...wire(registered()), type };
      expect(() => parseEvent(detail), type).toThrow(UnknownEventError);
      expect(() => parseEvent(detail), type).toThrow(`unknown event type ${type}`);
    }
  });

  test("rejects a type the consumer did not ask for", () => {
    expect(() => parseEvent(wire(registered()), "user.role_changed")).toThrow(/unexpected event type user.registered/);
  });

  test("rejects unknown versions", () => {
    for (const version of [2, 0, -1, 1.5, "1"]) {
      expect(() => parseEvent({ ...wire(registered()), version }), String(version)).toThrow(UnknownEventError);
    }
    expect(() => parseEvent({ ...wire(registered()), version: 2 })).toThrow(/unknown version 2 of user.registered/);
  });

  test("rejects data that does not match the contract", () => {
    const event = wire(registered());
    const bad = [{ ...(event.data as object), userId: "not-a-uuid" }, { ...(event.data as object), role: "ROOT" }, { userId, name: "A", role: "CUSTOMER" }, {}];
    for (const data of bad) expect(() => parseEvent({ ...event, data }), JSON.stringify(data)).toThrow(/user.registered data does not match its contract/);
  });

  test("rejects envelopes that are not envelopes", () => {
    const event = wire(registered());
    const bad: unknown[] = [
      null,
      "text",
      [],
      {},
      { ...event, id: "1" },
      { ...event, metadata: undefined },
      { ...event, metadata: { correlationId: 1, actor: null } },
      { ...event, data: "x" },
      { ...event, occurredAt: "" },
    ];
    for (const detail of bad) expect(() => parseEvent(detail), JSON.stringify(detail)).toThrow(/unparseable event envelope/);
  });
});
