/**
 * JSON Schema as the services' OpenAPI documents use it (type, properties, required,
 * additionalProperties, propertyNames, items, enum, const, anyOf, $ref, minLength/maxLength,
 * pattern, minimum/maximum, the email/uri/date-time formats), turned into three things a contract
 * fuzzer needs: a validator (is this answer what the document promises?), generators of values
 * the document accepts, and generators of values it certainly refuses. Written once, used against
 * the local runtime and the stage twin.
 */
import fc from "fast-check";

export type JsonSchema = Record<string, unknown>;
export type OpenApiDocument = Record<string, unknown>;

/** The schema behind a `$ref` (only `#/components/...` references occur in the documents). */
export function resolve(document: OpenApiDocument, schema: JsonSchema): JsonSchema {
  let current = schema;
  for (let hops = 0; typeof current.$ref === "string"; hops++) {
    if (hops > 20) throw new Error(`$ref cycle at ${current.$ref}`);
    const target = (current.$ref as string)
      .replace(/^#\//, "")
      .split("/")
      .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], document);
    if (!target) throw new Error(`unresolvable $ref ${current.$ref}`);
    // Siblings of $ref (zod-openapi repeats the target's keywords) add to the target.
    const { $ref: _, ...siblings } = current;
    current = { ...(target as JsonSchema), ...siblings };
  }
  return current;
}

const typeOf = (value: unknown): string => {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
};

const typesOf = (schema: JsonSchema): string[] | undefined =>
  schema.type === undefined ? undefined : Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];

/** What is wrong with `value` against `schema` (empty when it conforms), each as `path: problem`. */
export function schemaProblems(document: OpenApiDocument, schema: JsonSchema, value: unknown, path = "$"): string[] {
  const s = resolve(document, schema);
  if (Array.isArray(s.anyOf)) {
    const branches = (s.anyOf as JsonSchema[]).map((branch) => schemaProblems(document, branch, value, path));
    if (branches.some((problems) => problems.length === 0)) return [];
    return [`${path}: matches no anyOf branch (${branches.map((p) => p[0]).join(" | ")})`];
  }
  if ("const" in s && JSON.stringify(s.const) !== JSON.stringify(value)) return [`${path}: is not ${JSON.stringify(s.const)}`];
  if (Array.isArray(s.enum) && !s.enum.some((option) => JSON.stringify(option) === JSON.stringify(value)))
    return [`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`];
  const types = typesOf(s);
  const actual = typeOf(value);
  if (types && !types.includes(actual) && !(actual === "integer" && types.includes("number"))) return [`${path}: is ${actual}, expected ${types.join(" or ")}`];
  const problems: string[] = [];
  if (typeof value === "string") {
    if (typeof s.minLength === "number" && [...value].length < s.minLength) problems.push(`${path}: shorter than ${s.minLength}`);
    if (typeof s.maxLength === "number" && [...value].length > s.maxLength) problems.push(`${path}: longer than ${s.maxLength}`);
    if (typeof s.pattern === "string" && !new RegExp(s.pattern).test(value)) problems.push(`${path}: does not match ${s.pattern}`);
    if (s.format === "date-time" && Number.isNaN(Date.parse(value))) problems.push(`${path}: not a date-time`);
  }
  if (typeof value === "number") {
    if (typeof s.minimum === "number" && value < s.minimum) problems.push(`${path}: below ${s.minimum}`);
    if (typeof s.maximum === "number" && value > s.maximum) problems.push(`${path}: above ${s.maximum}`);
  }
  if (Array.isArray(value) && s.items)
    for (const [i, item] of value.entries()) problems.push(...schemaProblems(document, s.items as JsonSchema, item, `${path}[${i}]`));
  if (actual === "object") {
    const object = value as Record<string, unknown>;
    const properties = (s.properties ?? {}) as Record<string, JsonSchema>;
    for (const key of (s.required ?? []) as string[]) if (!(key in object)) problems.push(`${path}.${key}: is required`);
    for (const [key, member] of Object.entries(object)) {
      if (s.propertyNames) problems.push(...schemaProblems(document, s.propertyNames as JsonSchema, key, `${path}{${key}}`));
      if (properties[key]) problems.push(...schemaProblems(document, properties[key], member, `${path}.${key}`));
      else if (s.additionalProperties === false) problems.push(`${path}.${key}: is not allowed`);
      else if (typeof s.additionalProperties === "object")
        problems.push(...schemaProblems(document, s.additionalProperties as JsonSchema, member, `${path}.${key}`));
    }
  }
  return problems;
}

/** No lone UTF-16 surrogate half (with the `u` flag, a well-formed pair is one code point, not `\p{Cs}`). */
export const wellFormed = (value: string) => !/\p{Cs}/u.test(value);

/**
 * Text a server can store as it is: well-formed Unicode (no lone surrogate halves), no control
 * characters, no surrounding white space (services trim what they compare).
 */
const storable = (value: string) => wellFormed(value) && !/\p{Cc}/u.test(value) && value.trim() === value;

/**
 * Free-form JSON a server can store as it is: no NUL or lone surrogate in any string or key, and
 * no `__proto__` key (services refuse it rather than risk prototype pollution).
 */
export function storableJson(value: unknown): boolean {
  if (typeof value === "string") return wellFormed(value) && !value.includes("\u0000");
  if (value === null || typeof value !== "object") return true;
  return Object.entries(value).every(([key, item]) => key !== "__proto__" && storableJson(key) && storableJson(item));
}
const freeJson = () => fc.jsonValue({ maxDepth: 2 }).filter(storableJson);

/** Strings of `min`..`max` code points: ASCII, any Unicode (astral included), and the exact limits. */
function plainString(min: number, max: number): fc.Arbitrary<string> {
  const cap = Math.min(max, min + 40);
  const at = (length: number) => fc.string({ unit: "grapheme-ascii", minLength: length, maxLength: length }).filter((s) => [...s].length === length);
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: "grapheme", minLength: min, maxLength: cap }) },
    { weight: 2, arbitrary: fc.string({ minLength: min, maxLength: cap }) },
    { weight: 1, arbitrary: at(Math.max(min, 1)) },
    ...(Number.isFinite(max) && max <= 100_000 ? [{ weight: 1, arbitrary: at(max) }] : []),
  );
}

/** Values the schema accepts, favouring its edges (lengths at the limits, each enum member, null, empty objects). */
export function validValue(document: OpenApiDocument, schema: JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(document, schema);
  const fits = (value: unknown) => schemaProblems(document, s, value).length === 0;
  if (Array.isArray(s.anyOf)) return fc.oneof(...(s.anyOf as JsonSchema[]).map((branch) => validValue(document, branch, depth)));
  if ("const" in s) return fc.constant(s.const);
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]));
  const types = typesOf(s);
  if (!types) return freeJson();
  if (types.length > 1) return fc.oneof(...types.map((type) => validValue(document, { ...s, type }, depth)));
  const min = typeof s.minLength === "number" ? s.minLength : 0;
  const max = typeof s.maxLength === "number" ? s.maxLength : Number.POSITIVE_INFINITY;
  switch (types[0]) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer": {
      const lo = typeof s.minimum === "number" ? s.minimum : -(2 ** 31);
      const hi = typeof s.maximum === "number" ? s.maximum : 2 ** 31;
      return fc.oneof(fc.integer({ min: lo, max: hi }), fc.constantFrom(lo, hi));
    }
    case "number":
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case "string": {
      if (s.format === "date-time")
        return fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true }).map((d) => d.toISOString());
      if (s.format === "uri")
        return fc
          .webUrl({ validSchemes: ["https"], withQueryParameters: true, withFragments: true })
          .filter((url) => url.length <= max && storable(url) && fits(url));
      if (typeof s.pattern === "string")
        return fc
          .stringMatching(new RegExp(s.pattern))
          .filter((value) => storable(value) && fits(value))
          .map((value) => value);
      return plainString(min, max).filter(storable);
    }
    case "array":
      return fc.array(s.items ? validValue(document, s.items as JsonSchema, depth + 1) : freeJson(), { maxLength: 5 });
    case "object": {
      const properties = (s.properties ?? {}) as Record<string, JsonSchema>;
      const required = (s.required ?? []) as string[];
      const known = fc.record(Object.fromEntries(Object.entries(properties).map(([key, member]) => [key, validValue(document, member, depth + 1)])), {
        requiredKeys: required,
      });
      if (s.additionalProperties === true || (s.additionalProperties === undefined && Object.keys(properties).length === 0)) {
        const extra = fc.dictionary(fc.string({ unit: "grapheme", maxLength: 12 }), freeJson(), { maxKeys: 4 }).filter(storableJson);
        return fc.tuple(known, extra).map(([k, e]) => ({ ...e, ...k }));
      }
      return known;
    }
    default:
      throw new Error(`no generator for type ${String(types[0])}`);
  }
}

/** One value of a type other than `avoid`'s. */
const otherTyped = (avoid: string[]) =>
  fc
    .constantFrom<unknown>(null, true, 0, -1, 1.5, 1e308, -1e308, "", "x", [], [1], {}, { a: 1 }, 2 ** 53 + 2, "9".repeat(400))
    .filter((value) => !avoid.includes(typeOf(value)) && !(typeOf(value) === "integer" && avoid.includes("number")));

/**
 * Values the schema refuses, each with why: the wrong type, a string one past its length limits,
 * a pattern broken (control characters, white space, a lone surrogate), a number outside its
 * range, an unknown enum member, an object missing a required member or carrying an unknown one,
 * or a member of it made invalid.
 */
export function invalidValue(document: OpenApiDocument, schema: JsonSchema, depth = 0): fc.Arbitrary<unknown> | undefined {
  const s = resolve(document, schema);
  const refused = (value: unknown) => schemaProblems(document, s, value).length > 0;
  const candidates: fc.Arbitrary<unknown>[] = [];
  const types = typesOf(s);
  if (types) candidates.push(otherTyped(types));
  if (Array.isArray(s.enum))
    candidates.push(
      fc.constantFrom(
        ...(s.enum as unknown[]).flatMap((member) =>
          typeof member === "string" ? [member.toUpperCase(), ` ${member}`, `${member}x`, member.slice(0, -1), ""] : [],
        ),
        "unknown",
      ),
    );
  if (types?.includes("string") && !Array.isArray(s.enum)) {
    if (typeof s.maxLength === "number") candidates.push(fc.constant("a".repeat(s.maxLength + 1)), fc.constant("é".repeat(s.maxLength + 1)));
    if (typeof s.minLength === "number" && s.minLength > 0) candidates.push(fc.constant("a".repeat(s.minLength - 1)));
    if (typeof s.pattern === "string")
      candidates.push(
        fc.constantFrom("", " ", "\u0000", "a\nb", "\ud800", "\u0085", "not valid", "💥", "<script>", "' or 1=1 --", "../../etc/passwd", "%00"),
        fc.string({ unit: "binary", maxLength: 30 }),
      );
  }
  if (types?.includes("integer") || types?.includes("number")) {
    if (typeof s.minimum === "number") candidates.push(fc.constant(s.minimum - 1));
    if (typeof s.maximum === "number") candidates.push(fc.constant(s.maximum + 1), fc.constant(Number.MAX_VALUE));
    if (types.includes("integer") && !types.includes("number")) candidates.push(fc.constant(1.5));
  }
  if (types?.includes("object") && depth < 3) {
    const properties = (s.properties ?? {}) as Record<string, JsonSchema>;
    const required = (s.required ?? []) as string[];
    const valid = validValue(document, s, depth) as fc.Arbitrary<Record<string, unknown>>;
    if (required.length > 0)
      candidates.push(
        fc.tuple(valid, fc.constantFrom(...required)).map(([object, key]) => {
          const { [key]: _, ...rest } = object;
          return rest;
        }),
      );
    if (s.additionalProperties === false)
      candidates.push(fc.tuple(valid, fc.constantFrom("extra", "__proto__", "constructor", "role", "id")).map(([o, key]) => ({ ...o, [key]: 1 })));
    const breakable = Object.entries(properties).flatMap(([key, member]) => {
      const bad = invalidValue(document, member, depth + 1);
      return bad ? [{ key, bad }] : [];
    });
    if (breakable.length > 0)
      candidates.push(fc.tuple(valid, fc.constantFrom(...breakable)).chain(([object, { key, bad }]) => bad.map((value) => ({ ...object, [key]: value }))));
  }
  if (Array.isArray(s.anyOf))
    for (const branch of s.anyOf as JsonSchema[]) {
      const bad = invalidValue(document, branch, depth);
      if (bad) candidates.push(bad);
    }
  // A schema that accepts anything (`{}`) has no invalid value.
  if (candidates.length === 0) return undefined;
  return fc.oneof(...candidates).filter(refused);
}
