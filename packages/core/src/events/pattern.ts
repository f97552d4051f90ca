/**
 * EventBridge event patterns, the subset we use: exact values, `prefix`, `anything-but`,
 * `exists`, nested fields. The same pattern drives the EventBridge rule in the cloud and the
 * local bus, so both deliver the same events.
 */
export type PatternValue = string | number | boolean | null | { prefix: string } | { "anything-but": string | string[] } | { exists: boolean };
export interface EventPattern {
  [field: string]: PatternValue[] | EventPattern;
}

function matchValue(rule: PatternValue, value: unknown, present: boolean): boolean {
  if (rule !== null && typeof rule === "object") {
    if ("exists" in rule) return rule.exists === present;
    if (!present) return false;
    if ("prefix" in rule) return typeof value === "string" && value.startsWith(rule.prefix);
    const excluded = rule["anything-but"];
    return !(Array.isArray(excluded) ? excluded : [excluded]).includes(value as string);
  }
  return present && value === rule;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === "object";

export function matchesPattern(pattern: EventPattern, event: Record<string, unknown>): boolean {
  return Object.entries(pattern).every(([field, rule]) => {
    // Own fields only: "constructor" or "toString" are not fields of an event.
    const present = isObject(event) && Object.hasOwn(event, field);
    const value = present ? event[field] : undefined;
    if (Array.isArray(rule)) {
      const values = Array.isArray(value) ? value : [value];
      return rule.some((r) => values.some((v) => matchValue(r, v, present)));
    }
    // EventBridge matches flattened paths: under a missing or scalar parent no field exists (so
    // only `exists: false` matches), and an array of objects matches when one of them does.
    if (Array.isArray(value)) {
      const objects = value.filter(isObject);
      return objects.length > 0 ? objects.some((item) => matchesPattern(rule, item)) : matchesPattern(rule, {});
    }
    return matchesPattern(rule, isObject(value) ? value : {});
  });
}
