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

export function matchesPattern(pattern: EventPattern, event: Record<string, unknown>): boolean {
  return Object.entries(pattern).every(([field, rule]) => {
    const present = event !== null && typeof event === "object" && field in event;
    const value = present ? event[field] : undefined;
    if (Array.isArray(rule)) {
      const values = Array.isArray(value) ? value : [value];
      return rule.some((r) => values.some((v) => matchValue(r, v, present)));
    }
    return value !== null && typeof value === "object" && matchesPattern(rule, value as Record<string, unknown>);
  });
}
