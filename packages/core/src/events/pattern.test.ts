import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { type EventPattern, matchesPattern } from "./pattern";

const event = {
  source: "enclave.auth",
  "detail-type": "user.registered",
  detail: {
    id: "0190a0a0-0000-7000-8000-000000000000",
    type: "user.registered",
    version: 1,
    data: { userId: "u1", role: "ADMIN", email: "a@b.io", tags: ["x", "y"], verified: false, nickname: null },
    metadata: { correlationId: "req-1", actor: null },
  },
};

describe("matchesPattern", () => {
  test("exact values: any listed value matches, every field must match", () => {
    expect(matchesPattern({ source: ["enclave.auth"] }, event)).toBe(true);
    expect(matchesPattern({ source: ["enclave.profile", "enclave.auth"], "detail-type": ["user.registered"] }, event)).toBe(true);
    expect(matchesPattern({ source: ["enclave.auth"], "detail-type": ["user.role_changed"] }, event)).toBe(false);
    expect(matchesPattern({ source: ["enclave.Auth"] }, event)).toBe(false);
    expect(matchesPattern({ source: [] }, event)).toBe(false);
    expect(matchesPattern({}, event)).toBe(true);
  });

  test("numbers, booleans and null match by value and type", () => {
    expect(matchesPattern({ detail: { version: [1] } }, event)).toBe(true);
    expect(matchesPattern({ detail: { version: ["1"] } }, event)).toBe(false);
    expect(matchesPattern({ detail: { data: { verified: [false] } } }, event)).toBe(true);
    expect(matchesPattern({ detail: { data: { nickname: [null] } } }, event)).toBe(true);
    expect(matchesPattern({ detail: { data: { email: [null] } } }, event)).toBe(false);
  });

  test("prefix", () => {
    expect(matchesPattern({ source: [{ prefix: "enclave." }] }, event)).toBe(true);
    expect(matchesPattern({ "detail-type": [{ prefix: "user." }] }, event)).toBe(true);
    expect(matchesPattern({ "detail-type": [{ prefix: "payment." }] }, event)).toBe(false);
    expect(matchesPattern({ detail: { version: [{ prefix: "1" }] } }, event)).toBe(false);
    expect(matchesPattern({ detail: { missing: [{ prefix: "" }] } }, event)).toBe(false);
  });

  test("anything-but: a single value or a list, and never a missing field", () => {
    expect(matchesPattern({ source: [{ "anything-but": "enclave.admin" }] }, event)).toBe(true);
    expect(matchesPattern({ source: [{ "anything-but": "enclave.auth" }] }, event)).toBe(false);
    expect(matchesPattern({ source: [{ "anything-but": ["enclave.admin", "enclave.auth"] }] }, event)).toBe(false);
    expect(matchesPattern({ source: [{ "anything-but": ["enclave.admin", "enclave.profile"] }] }, event)).toBe(true);
    expect(matchesPattern({ detail: { missing: [{ "anything-but": "x" }] } }, event)).toBe(false);
  });

  test("exists", () => {
    expect(matchesPattern({ detail: { data: { role: [{ exists: true }] } } }, event)).toBe(true);
    expect(matchesPattern({ detail: { data: { role: [{ exists: false }] } } }, event)).toBe(false);
    expect(matchesPattern({ detail: { data: { phone: [{ exists: false }] } } }, event)).toBe(true);
    expect(matchesPattern({ detail: { data: { phone: [{ exists: true }] } } }, event)).toBe(false);
    // A field under a missing parent does not exist either.
    expect(matchesPattern({ detail: { extra: { phone: [{ exists: false }] } } }, event)).toBe(true);
    expect(matchesPattern({ detail: { extra: { phone: [{ exists: true }] } } }, event)).toBe(false);
  });

  test("inherited object properties are not fields of the event", () => {
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expect(matchesPattern({ [name]: [{ exists: true }] }, event), name).toBe(false);
      expect(matchesPattern({ [name]: [{ exists: false }] }, event), name).toBe(true);
      expect(matchesPattern({ detail: { [name]: [{ "anything-but": "x" }] } }, event), name).toBe(false);
      expect(matchesPattern({ detail: { [name]: { x: [{ exists: true }] } } }, event), name).toBe(false);
    }
  });

  test("nested detail fields, and arrays in the event match when any element does", () => {
    const pattern: EventPattern = { source: ["enclave.auth"], detail: { data: { role: ["ADMIN", "VENDOR"] }, metadata: { actor: [null] } } };
    expect(matchesPattern(pattern, event)).toBe(true);
    expect(matchesPattern({ detail: { data: { role: ["CUSTOMER"] } } }, event)).toBe(false);
    expect(matchesPattern({ detail: { data: { tags: ["y"] } } }, event)).toBe(true);
    expect(matchesPattern({ detail: { data: { tags: ["z"] } } }, event)).toBe(false);
    expect(matchesPattern({ detail: { data: { tags: [{ prefix: "x" }] } } }, event)).toBe(true);
    const withList = { detail: { items: [{ sku: "a" }, { sku: "b" }] } };
    expect(matchesPattern({ detail: { items: { sku: ["b"] } } }, withList)).toBe(true);
    expect(matchesPattern({ detail: { items: { sku: ["c"] } } }, withList)).toBe(false);
    // A nested pattern never matches a scalar.
    expect(matchesPattern({ source: { x: ["enclave.auth"] } }, event)).toBe(false);
  });

  const key = fc.string({ minLength: 1, maxLength: 8 });
  const scalar = fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant(null));
  const flatEvent = fc.dictionary(key, scalar, { minKeys: 1, maxKeys: 6 });

  test("property: a pattern of the event's own values matches it; one of other values does not", () => {
    fc.assert(
      fc.property(flatEvent, fc.array(scalar, { maxLength: 3 }), (ev, others) => {
        const [field, value] = Object.entries(ev)[0]!;
        expect(matchesPattern({ [field]: [value, ...others] }, ev)).toBe(true);
        expect(matchesPattern({ detail: { [field]: [value] } }, { detail: ev })).toBe(true);
        const different = others.filter((o) => o !== value);
        expect(matchesPattern({ [field]: different }, ev)).toBe(false);
        expect(matchesPattern({ [field]: [{ exists: true }] }, ev)).toBe(true);
        expect(matchesPattern({ [field]: [{ exists: false }] }, ev)).toBe(false);
      }),
    );
  });

  test("property: for a present field, anything-but is the opposite of an exact match", () => {
    fc.assert(
      fc.property(flatEvent, fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }), (ev, excluded) => {
        for (const [field] of Object.entries(ev)) {
          const exact = matchesPattern({ [field]: excluded }, ev);
          const anythingBut = matchesPattern({ [field]: [{ "anything-but": excluded }] }, ev);
          expect(anythingBut).toBe(!exact);
        }
      }),
    );
  });

  test("property: a field the event does not have matches only exists:false", () => {
    fc.assert(
      fc.property(flatEvent, key, scalar, (ev, field, value) => {
        fc.pre(!Object.hasOwn(ev, field));
        expect(matchesPattern({ [field]: [value] }, ev)).toBe(false);
        expect(matchesPattern({ [field]: [{ prefix: "" }] }, ev)).toBe(false);
        expect(matchesPattern({ [field]: [{ "anything-but": "zzz" }] }, ev)).toBe(false);
        expect(matchesPattern({ [field]: [{ exists: true }] }, ev)).toBe(false);
        expect(matchesPattern({ [field]: [{ exists: false }] }, ev)).toBe(true);
      }),
    );
  });
});
