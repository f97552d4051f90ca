/**
 * The contract fuzzer, written once and run against any deployment of the API (the local runtime
 * in-process, the stage twin over HTTP): every operation of every service's OpenAPI document is
 * sent requests generated from its own schemas (fast-check) — valid and boundary bodies, invalid
 * ones (wrong types, missing and extra members, broken JSON, wrong or missing content type,
 * oversized), path parameters (the caller's ids, another user's, unknown and malformed ones),
 * query strings (limits and cursors in and out of range, crafted cursors), Authorization and
 * Idempotency-Key variants. Every answer must be one the operation documents, in the API.md
 * error shape with a code API.md and the document list for it, free of internals; where the
 * request tells what the answer must be (a valid request, a stranger, a bad token, a malformed
 * id...), it must be exactly that, and a success body must match its schema. Stateful sequences
 * of valid and invalid calls by owners, strangers and the administrator check that nobody learns
 * another user's data and that valid calls keep working.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { expect } from "vitest";
import { type Answer, type ContractOperation, contractProblems, requestBodySchema, successStatuses } from "./contract-fuzz.testing";
import { invalidValue, type JsonSchema, resolve, schemaProblems, validValue, wellFormed } from "./schema-fuzz.testing";

/** Who may call an operation, as its route declares it. */
export type OperationAccess = "public" | "user" | { roles: readonly string[]; service?: boolean };

export interface FuzzTarget {
  send(method: string, path: string, init?: { headers?: Record<string, string>; body?: string }): Promise<Answer>;
  /** Waits until the events published so far have reached their subscribers. */
  settle(): Promise<void>;
  /** An administrator that exists on the target (the development seed's). */
  admin: { email: string; password: string };
  operations: ContractOperation[];
  access: Map<string, OperationAccess>;
  /** What no answer may contain (contract-fuzz.testing's leakPattern). */
  leaks: RegExp;
}

export interface ContractFuzzer {
  /** Signs in the administrator and creates the users, payments and configuration the cases refer to. */
  setup(): Promise<void>;
  /** `runs` generated requests to one operation; answers the statuses seen, with their counts. */
  fuzz(op: ContractOperation, runs: number): Promise<Map<string, number>>;
  /** `runs` stateful sequences of calls. */
  sequences(runs: number): Promise<void>;
}

export function contractFuzzer(target: FuzzTarget): ContractFuzzer {
  interface Account {
    id: string;
    email: string;
    password: string;
    token: string;
    refreshToken: string;
  }
  const fx = {
    admin: undefined as unknown as Account,
    alice: undefined as unknown as Account,
    bob: undefined as unknown as Account,
    carol: undefined as unknown as Account,
    /** Signs in for the valid login cases only, so that failed sign-ins never lock it. */
    login: undefined as unknown as Account,
    /** alice → bob, completed. */
    sent: "",
    /** bob → alice, scheduled, pending. */
    received: "",
    /** bob → carol: alice is a stranger to it. */
    foreign: "",
    configKey: "fuzz.existing",
  };
  /** Every email registered so far, lower case: registering one again is 409. */
  const registered = new Set<string>();

  const send = target.send;
  const json = (token?: string, extra: Record<string, string> = {}) => ({
    "content-type": "application/json",
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...extra,
  });

  async function register(name: string): Promise<Account> {
    const email = `${name}-${randomUUID().slice(0, 8)}@example.com`;
    const password = "fuzz-password-1";
    const answer = await send("POST", "/auth/register", { headers: json(), body: JSON.stringify({ email, password, name }) });
    expect(answer.status, answer.text).toBe(201);
    registered.add(email.toLowerCase());
    const body = JSON.parse(answer.text);
    return { id: body.user.id, email, password, token: body.accessToken, refreshToken: body.refreshToken };
  }

  async function pay(from: Account, to: Account, extra: Record<string, unknown> = {}): Promise<string> {
    const answer = await send("POST", "/payments", {
      headers: json(from.token, { "idempotency-key": randomUUID() }),
      body: JSON.stringify({ recipientEmail: to.email, amount: "5.00", ...extra }),
    });
    expect(answer.status, answer.text).toBe(201);
    return JSON.parse(answer.text).payment.id;
  }
  const future = () => new Date(Date.now() + 7 * 86_400_000).toISOString();

  async function freshRefreshToken(): Promise<string> {
    const answer = await send("POST", "/auth/login", { headers: json(), body: JSON.stringify({ email: fx.login.email, password: fx.login.password }) });
    expect(answer.status, answer.text).toBe(200);
    return JSON.parse(answer.text).refreshToken;
  }

  // ---------------------------------------------------------------------------------------------
  // One generated case: who calls, with which credentials, path, query, headers and body.

  type Actor = "alice" | "admin";
  /** Credentials that are never accepted, made from the caller's genuine token (each is 401 on a protected operation). */
  const badAuthorizations: ((token: string) => string | undefined)[] = [
    () => undefined,
    () => "",
    () => "Bearer",
    () => "Bearer not-a-token",
    () => "Basic YWRtaW46YWRtaW4=",
    (token) => token,
    (token) => `Bearer ${token}.x`,
    (token) => `Bearer ${token.slice(0, -2)}`,
    // The payload changed under the genuine signature.
    (token) => `Bearer ${token.replace(/\.([A-Za-z0-9_-])/, (_, c: string) => `.${c === "e" ? "f" : "e"}`)}`,
    (token) => `Bearer ${token}, Bearer ${token}`,
    (token) => `Token ${token}`,
  ];

  /** What a path parameter is, relative to the caller. */
  type PathChoice = { kind: "own" | "received" | "foreign" | "fresh" | "unknown" | "other"; value?: string } | { kind: "malformed"; value: string };

  interface Plan {
    actor: Actor;
    /** undefined: the actor's genuine token; otherwise the index of a bad Authorization variant. */
    authorization: number | undefined;
    path: Record<string, PathChoice>;
    query: { values: Record<string, string>; valid: boolean | "unknown" };
    idempotencyKey: { value: string | undefined; valid: boolean };
    body:
      | { kind: "none" }
      | { kind: "semantic" | "schema" | "invalid" | "malformed"; text: string; value?: unknown }
      | { kind: "media"; text: string; contentType: string | undefined }
      | { kind: "empty" | "huge" };
  }

  const uuidV4 = () => randomUUID();

  function pathChoices(op: ContractOperation, schema: JsonSchema): fc.Arbitrary<PathChoice> {
    const malformed = (invalidValue(op.document, schema) ?? fc.constant("%%"))
      .map((value) => (typeof value === "string" ? value : JSON.stringify(value)))
      // An empty or dot segment is another route (or none), not a malformed parameter of this one;
      // so is a slash, even encoded: API Gateway hands the function the path decoded, and the local
      // runtime routes as it does (escaped-paths.testing.ts checks both).
      .filter(
        (value) =>
          value !== "" && value !== "." && value !== ".." && !value.includes("/") && wellFormed(value) && schemaProblems(op.document, schema, value).length > 0,
      );
    const kinds: PathChoice["kind"][] =
      op.service === "payments"
        ? ["own", "received", "foreign", "fresh", "unknown"]
        : op.service === "admin"
          ? ["own", "fresh", "unknown"]
          : ["own", "other", "unknown"];
    return fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...kinds).map((kind) => ({ kind }) as PathChoice) },
      { weight: 2, arbitrary: malformed.map((value) => ({ kind: "malformed", value }) as PathChoice) },
    );
  }

  /** Cursors that decode to a keyset whose time or id is odd: they must be refused or read, never crash. */
  const craftedCursor = fc
    .tuple(
      fc.constantFrom(
        "0",
        "1",
        "99999",
        "-1",
        "2030-02-30T00:00:00Z",
        "Tue",
        "+275760-09-13T00:00:00.000Z",
        "1e5",
        "2020-01-01T00:00:00+99:00",
        "2020",
        "0000-01-01T00:00:00Z",
      ),
      fc.constantFrom(uuidV4(), "00000000-0000-0000-0000-000000000000", uuidV4().toUpperCase()),
    )
    .map(([t, id]) => Buffer.from(JSON.stringify({ t, id })).toString("base64url"));

  function queryValues(op: ContractOperation): fc.Arbitrary<Plan["query"]> {
    const parameters = (op.operation.parameters ?? []).filter((p) => p.in === "query");
    if (parameters.length === 0) return fc.constant({ values: {}, valid: true });
    const entries = parameters.map((parameter) => {
      const schema = resolve(op.document, parameter.schema ?? {});
      let good: fc.Arbitrary<string>;
      let bad: fc.Arbitrary<string>;
      if (schema.type === "integer") {
        good = fc.integer({ min: schema.minimum as number, max: schema.maximum as number }).map(String);
        bad = fc.constantFrom("0", "101", "-1", "1.5", "abc", "1e400", "NaN", "Infinity", "", "99999999999999999999", "-0.5", "1,2");
      } else if (parameter.name === "cursor") {
        // Mostly a cursor of the form the API hands out (a time and an id: a position in any
        // list); otherwise one it never hands out, which its schema allows and its contents decide.
        good = fc.oneof(
          {
            weight: 3,
            arbitrary: fc
              .tuple(fc.date({ noInvalidDate: true, min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-01-01T00:00:00Z") }), fc.uuid())
              .map(([t, id]) => Buffer.from(JSON.stringify({ t: t.toISOString(), id })).toString("base64url")),
          },
          { weight: 1, arbitrary: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), craftedCursor).map((value) => `?${value}`) },
        );
        bad = fc.constant("c".repeat(513));
      } else if (parameter.name === "email") {
        good = fc.oneof(fc.constantFrom(fx.bob.email, fx.bob.email.toUpperCase(), fx.carol.email), validValue(op.document, schema).map(String));
        bad = (invalidValue(op.document, schema) as fc.Arbitrary<unknown>).filter((v) => typeof v === "string").map(String);
      } else if (parameter.name === "userId") {
        good = fc.constantFrom(fx.alice.id, fx.bob.id, uuidV4());
        bad = (invalidValue(op.document, schema) as fc.Arbitrary<unknown>).filter((v) => typeof v === "string").map(String);
      } else if (schema.format === "date-time") {
        good = validValue(op.document, schema).map(String);
        bad = fc.constantFrom("0000-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01T24:00:00Z", "yesterday", "1", "2024-01-01", "");
      } else {
        good = validValue(op.document, schema).map(String);
        bad = (invalidValue(op.document, schema) ?? fc.constant("\u0000")).filter((v) => typeof v === "string" && v.trim() === v).map(String);
      }
      return { name: parameter.name, good, bad };
    });
    type Entry = { name: string; value: string; valid: boolean } | undefined;
    // A parameter is absent more often than present: each one present narrows the page.
    const optional = entries.map(({ name, good }) =>
      fc.oneof({ weight: 3, arbitrary: fc.constant<Entry>(undefined) }, { weight: 2, arbitrary: good.map((value): Entry => ({ name, value, valid: true })) }),
    );
    // Mostly every parameter valid (or absent), so that requests with many parameters still get
    // past validation; otherwise one of them out of range.
    const allValid = fc.tuple(...optional);
    const oneBad = fc
      .nat({ max: entries.length - 1 })
      .chain((bad) =>
        fc.tuple(
          ...entries.map((entry, i) =>
            i === bad ? entry.bad.map((value): Entry => ({ name: entry.name, value, valid: false })) : (optional[i] as fc.Arbitrary<Entry>),
          ),
        ),
      );
    return fc
      .tuple(
        fc.oneof({ weight: 3, arbitrary: allValid }, { weight: 1, arbitrary: oneBad }),
        fc.option(fc.constantFrom("x", "limit[]", "__proto__", "constructor"), { nil: undefined, freq: 10 }),
      )
      .map(([chosen, extra]) => {
        const values: Record<string, string> = {};
        let valid: boolean | "unknown" = true;
        for (const entry of chosen as Entry[]) {
          if (!entry) continue;
          // A "?" marks a cursor the API never handed out: whether it is refused is up to its contents.
          const uncertain = entry.name === "cursor" && entry.value.startsWith("?");
          values[entry.name] = uncertain ? entry.value.slice(1) : entry.value;
          if (!entry.valid) valid = false;
          else if (uncertain && valid === true) valid = "unknown";
        }
        // API.md does not say whether an unknown parameter is ignored or refused: either will do.
        if (extra) {
          values[extra] = "1";
          if (valid === true) valid = "unknown";
        }
        return { values, valid };
      });
  }

  /** Bodies an operation accepts and that succeed, given the fixtures (values drawn from its schema). */
  function semanticBody(op: ContractOperation): fc.Arbitrary<unknown> | undefined {
    const schema = requestBodySchema(op);
    if (!schema) return undefined;
    const valid = validValue(op.document, schema) as fc.Arbitrary<Record<string, unknown>>;
    switch (op.operationId) {
      case "registerUser":
        return fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: valid.map((body) => ({ ...body, email: fx.bob.email.toUpperCase() })) });
      case "login":
        return fc.constantFrom({ email: fx.login.email, password: fx.login.password }, { email: fx.login.email.toUpperCase(), password: fx.login.password });
      case "refreshSession":
      case "logout":
        return fc.constant({ refreshToken: "<fresh>" });
      case "updateMyProfile":
        return valid.filter((body) => Object.keys(body).length > 0);
      case "putConfigItem":
        return valid;
      case "changeUserRole":
        return valid;
      case "createPayment": {
        const cents = fc.oneof(fc.integer({ min: 1, max: 9_999_999_999 }), fc.constantFrom(1, 9_999_999_999, 1_000_000, 1_000_001));
        const amount = fc.tuple(cents, fc.constantFrom("plain", "short", "padded")).map(([c, form]) => {
          const whole = Math.floor(c / 100);
          const fraction = String(c % 100).padStart(2, "0");
          if (form === "short" && c % 10 === 0) return `${whole}.${fraction[0]}`;
          if (form === "padded") return `000${whole}.${fraction}`;
          return `${whole}.${fraction}`;
        });
        const kind = fc.oneof(
          fc.constant({}),
          fc.constant({ type: "instant" }),
          fc
            .date({ min: new Date(Date.now() + 3_600_000), max: new Date("2099-01-01T00:00:00Z"), noInvalidDate: true })
            .map((d) => ({ type: "scheduled", scheduledFor: d.toISOString() })),
          fc.constantFrom("daily", "weekly", "monthly").map((interval) => ({ type: "recurring", interval, scheduledFor: future() })),
        );
        return fc
          .tuple(valid, amount, kind, fc.constantFrom(fx.bob.email, fx.bob.email.toUpperCase(), fx.carol.email))
          .map(([body, amount, kind, recipientEmail]) => {
            const { type: _t, scheduledFor: _s, interval: _i, ...rest } = body;
            return { ...rest, ...kind, amount, recipientEmail };
          });
      }
      default:
        return valid;
    }
  }

  function bodies(op: ContractOperation): fc.Arbitrary<Plan["body"]> {
    const schema = requestBodySchema(op);
    if (!schema) return fc.constant({ kind: "none" });
    const semantic = semanticBody(op) as fc.Arbitrary<unknown>;
    const invalid = invalidValue(op.document, schema) ?? fc.constant(null);
    const text = (value: unknown) => JSON.stringify(value);
    return fc.oneof(
      { weight: 6, arbitrary: semantic.map((value) => ({ kind: "semantic" as const, text: text(value), value })) },
      { weight: 3, arbitrary: validValue(op.document, schema).map((value) => ({ kind: "schema" as const, text: text(value), value })) },
      { weight: 4, arbitrary: invalid.map((value) => ({ kind: "invalid" as const, text: text(value), value })) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom("{", '{"a":', "[1,]", "nul", "{'a':1}", '{"a":1}}', "\u0000", '{"a":"\\u12"}', '{"a":1,}', "tru", "[", "💥")
          .map((t) => ({ kind: "malformed" as const, text: t })),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            semantic,
            fc.constantFrom(
              undefined,
              "text/plain",
              "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=x",
              "application/jsonx",
              "json",
              "text/json",
            ),
          )
          .map(([value, contentType]) => ({ kind: "media" as const, text: text(value), contentType })),
      },
      { weight: 1, arbitrary: fc.constant({ kind: "empty" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "huge" as const }) },
    );
  }

  const idempotencyKeys: fc.Arbitrary<Plan["idempotencyKey"]> = fc.oneof(
    { weight: 6, arbitrary: fc.oneof(fc.uuid(), fc.stringMatching(/^[\x21-\x7e]{1,255}$/)).map((value) => ({ value, valid: true })) },
    { weight: 1, arbitrary: fc.uuid().map((value) => ({ value: `"${value}"`, valid: true })) },
    {
      weight: 2,
      // Non-ASCII keys are Latin-1 here: fetch sends header values as byte strings.
      arbitrary: fc.constantFrom(undefined, "", " ", "a b", "!".repeat(256), '""', "\t", "a,b c", "clé", "Zoë-1").map((value) => ({ value, valid: false })),
    },
  );

  function plans(op: ContractOperation): fc.Arbitrary<Plan> {
    const pathParameters = (op.operation.parameters ?? []).filter((p) => p.in === "path");
    const hasKey = (op.operation.parameters ?? []).some((p) => p.in === "header" && p.name === "Idempotency-Key");
    return fc.record({
      actor: fc.constantFrom<Actor>("alice", "admin"),
      authorization: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat({ max: badAuthorizations.length - 1 }) }),
      path: fc.record(Object.fromEntries(pathParameters.map((p) => [p.name, pathChoices(op, resolve(op.document, p.schema ?? {}))]))),
      query: queryValues(op),
      idempotencyKey: hasKey ? idempotencyKeys : fc.constant({ value: undefined, valid: true }),
      body: bodies(op),
    }) as fc.Arbitrary<Plan>;
  }

  /** The query parameters an operation cannot do without, each with a value that finds something (an email: an account that exists). */
  function requiredQuery(op: ContractOperation): Record<string, string> {
    const required = (op.operation.parameters ?? []).filter((p) => p.in === "query" && p.required);
    return Object.fromEntries(
      required.map((p) => [
        p.name,
        p.name === "email" ? fx.bob.email : String(fc.sample(validValue(op.document, resolve(op.document, p.schema ?? {})), { numRuns: 1, seed: 1 })[0]),
      ]),
    );
  }

  /**
   * A request the operation must accept, run first whatever the run count: an admitted caller, the
   * caller's own (or a fresh) resource, only the query it requires, a valid key and a body that succeeds.
   */
  function validPlan(op: ContractOperation): Plan {
    const pathParameters = (op.operation.parameters ?? []).filter((p) => p.in === "path");
    const semantic = semanticBody(op);
    const value = semantic ? fc.sample(semantic, { numRuns: 1, seed: 1 })[0] : undefined;
    return {
      actor: admits(op, "alice") ? "alice" : "admin",
      authorization: undefined,
      path: Object.fromEntries(pathParameters.map((p) => [p.name, { kind: op.operationId === "cancelPayment" ? "fresh" : "own" }])),
      query: { values: requiredQuery(op), valid: true },
      idempotencyKey: { value: randomUUID(), valid: true },
      body: semantic ? { kind: "semantic", text: JSON.stringify(value), value } : { kind: "none" },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // From a plan to a request, and what the contract says the answer must be.

  interface Expectation {
    /** The exact status, or undefined when any documented one will do. */
    status?: number;
    code?: string;
    /** Checks on a success body beyond its schema. */
    check?: (body: Record<string, unknown>) => void;
  }

  const isProtected = (op: ContractOperation) => target.access.get(op.operationId) !== "public";
  const admits = (op: ContractOperation, actor: Actor) => {
    const access = target.access.get(op.operationId);
    return access === "public" || access === "user" || (access?.roles.includes(actor === "admin" ? "ADMIN" : "CUSTOMER") ?? false);
  };

  /** Just over API.md's 1 MB limit. */
  const hugeBody = JSON.stringify({ value: "x".repeat(1024 * 1024 + 10) });

  async function realize(op: ContractOperation, plan: Plan) {
    const caller = plan.actor === "admin" ? fx.admin : fx.alice;
    const headers: Record<string, string> = {};
    const authorization = plan.authorization === undefined ? `Bearer ${caller.token}` : badAuthorizations[plan.authorization]?.(caller.token);
    if (authorization !== undefined) headers.authorization = authorization;
    if (plan.idempotencyKey.value !== undefined) headers["idempotency-key"] = plan.idempotencyKey.value;

    let path = op.path;
    const pathFacts: Record<string, PathChoice & { resolved: string }> = {};
    for (const [name, choice] of Object.entries(plan.path)) {
      let value: string;
      if (choice.kind === "malformed") value = choice.value;
      else if (op.service === "payments") {
        value =
          choice.kind === "own"
            ? fx.sent
            : choice.kind === "received"
              ? fx.received
              : choice.kind === "foreign"
                ? fx.foreign
                : choice.kind === "fresh"
                  ? await pay(fx.alice, fx.bob, { type: "scheduled", scheduledFor: future() })
                  : uuidV4();
      } else if (op.service === "admin") {
        value = choice.kind === "own" ? fx.configKey : choice.kind === "fresh" ? `fuzz.${randomUUID()}` : `absent.${randomUUID()}`;
        if (choice.kind !== "unknown") {
          const put = await send("PUT", `/admin/config/${value}`, { headers: json(fx.admin.token), body: JSON.stringify({ value: "x" }) });
          expect(put.status).toBe(200);
        }
      } else if (op.operationId === "changeUserRole") {
        // Only carol's role is changed: alice, bob and the administrator keep theirs for other cases.
        value = choice.kind === "unknown" ? uuidV4() : fx.carol.id;
      } else {
        value = choice.kind === "own" ? caller.id : choice.kind === "other" ? (caller === fx.alice ? fx.bob.id : fx.alice.id) : uuidV4();
      }
      pathFacts[name] = { ...choice, resolved: value };
      path = path.replace(`{${name}}`, encodeURIComponent(value));
    }
    const search = new URLSearchParams(plan.query.values).toString();

    let body: string | undefined;
    if (plan.body.kind === "semantic" || plan.body.kind === "schema" || plan.body.kind === "invalid" || plan.body.kind === "malformed") {
      headers["content-type"] = "application/json";
      body = plan.body.text;
      if (body.includes("<fresh>")) body = body.replace("<fresh>", await freshRefreshToken());
    } else if (plan.body.kind === "media") {
      if (plan.body.contentType) headers["content-type"] = plan.body.contentType;
      body = plan.body.text;
    } else if (plan.body.kind === "empty") {
      headers["content-type"] = "application/json";
      body = "";
    } else if (plan.body.kind === "huge") {
      headers["content-type"] = "application/json";
      body = hugeBody;
    }
    const expectation = expectationOf(op, plan, pathFacts, caller);
    return { path: search ? `${path}?${search}` : path, init: { headers, ...(body === undefined ? {} : { body }) }, expectation };
  }

  function expectationOf(op: ContractOperation, plan: Plan, path: Record<string, PathChoice & { resolved: string }>, caller: Account): Expectation {
    if (isProtected(op)) {
      if (plan.authorization !== undefined) return { status: 401, code: "unauthorized" };
      if (!admits(op, plan.actor)) return { status: 403, code: "forbidden" };
    }
    if (Object.values(path).some((choice) => choice.kind === "malformed")) return { status: 400, code: "validation_failed" };
    if (plan.query.valid === false) return { status: 400, code: "validation_failed" };
    const b = plan.body;
    if (b.kind === "huge") return { status: 413, code: "payload_too_large" };
    if (b.kind === "media") return { status: 415, code: "unsupported_media_type" };
    if (b.kind === "malformed") return { status: 400, code: "malformed_json" };
    if (b.kind === "empty" || b.kind === "invalid") return { status: 400, code: "validation_failed" };
    if (!plan.idempotencyKey.valid) return { status: 400, code: "validation_failed" };
    if (plan.query.valid === "unknown") return {};
    return semanticExpectation(op, plan, path, caller);
  }

  const id = (value: unknown) => (value as { id?: string } | undefined)?.id;

  function semanticExpectation(op: ContractOperation, plan: Plan, path: Record<string, PathChoice & { resolved: string }>, caller: Account): Expectation {
    const admin = plan.actor === "admin";
    const body = plan.body.kind === "semantic" || plan.body.kind === "schema" ? (plan.body.value as Record<string, unknown>) : undefined;
    const semantic = plan.body.kind === "semantic";
    const [param] = Object.values(path);
    const ok = (check?: Expectation["check"]): Expectation => ({ status: successStatuses(op)[0], ...(check ? { check } : {}) });
    switch (op.operationId) {
      case "registerUser": {
        const email = String(body?.email).toLowerCase();
        if (registered.has(email)) return { status: 409, code: "conflict" };
        // The server also refuses what the document cannot say (an address it cannot store, say):
        // a schema-valid new email is 201 or 400, never anything else.
        return semantic ? ok((b) => expect((b.user as Record<string, unknown>).email).toBe(body?.email)) : {};
      }
      case "login":
        if (semantic) return ok((b) => expect(id(b.user)).toBe(fx.login.id));
        return { status: 401, code: "unauthorized" };
      case "refreshSession":
        return semantic ? ok() : { status: 401, code: "unauthorized" };
      case "logout":
        return { status: 204 };
      case "getMe":
        return ok((b) => expect(id(b.user)).toBe(caller.id));
      case "getUser":
        return param?.kind === "unknown" ? { status: 404, code: "not_found" } : ok((b) => expect(id(b.user)).toBe(param?.resolved));
      case "findUserByEmail": {
        const email = plan.query.values.email;
        if (email === undefined) return { status: 400, code: "validation_failed" };
        const known = [fx.bob, fx.carol].find((account) => account.email.toLowerCase() === email.toLowerCase());
        return known ? ok((b) => expect(id(b.user)).toBe(known.id)) : { status: 404, code: "not_found" };
      }
      case "changeUserRole":
        return param?.kind === "unknown" ? { status: 404, code: "not_found" } : ok((b) => expect((b.user as { role: string }).role).toBe(body?.role));
      case "getAuditLogs": {
        const { userId, action, from, to } = plan.query.values;
        if (from && to && Date.parse(from) > Date.parse(to)) return { status: 400, code: "validation_failed" };
        return ok((b) => {
          for (const row of b.items as { userId: string | null; action: string }[]) {
            if (userId) expect(row.userId).toBe(userId);
            if (action) expect(row.action).toBe(action);
          }
        });
      }
      case "getConfigItem":
      case "deleteConfigItem":
        return param?.kind === "unknown" ? { status: 404, code: "not_found" } : ok();
      case "putConfigItem":
        return semantic ? ok((b) => expect(b.key).toBe(param?.resolved)) : {};
      case "getMyProfile":
        return ok((b) => expect((b.profile as { userId: string }).userId).toBe(caller.id));
      case "updateMyProfile":
        return semantic ? ok((b) => expect((b.profile as { userId: string }).userId).toBe(caller.id)) : {};
      case "getProfile":
        if (param?.kind === "own" || (admin && param?.kind === "other"))
          return ok((b) => expect((b.profile as { userId: string }).userId).toBe(param.resolved));
        // API.md: only that user or an ADMIN; anyone else is refused whether or not the user exists.
        return admin ? { status: 404, code: "not_found" } : { status: 403, code: "forbidden" };
      case "createPayment":
        if (!semantic) return {};
        if (String(body?.recipientEmail).toLowerCase() === caller.email.toLowerCase()) return { status: 400, code: "validation_failed" };
        return ok((b) => {
          const payment = b.payment as Record<string, unknown>;
          expect(payment.senderId).toBe(caller.id);
          expect(payment.status).toBe("pending");
        });
      case "listPayments":
        // A page of the caller's payments only: never another user's.
        return ok((b) => {
          for (const p of b.items as { senderId: string; recipientId: string; id: string }[]) expect([p.senderId, p.recipientId]).toContain(caller.id);
        });
      case "getPayment":
      case "listPaymentTransactions":
      case "cancelPayment": {
        const involved = admin || param?.kind === "own" || param?.kind === "received" || param?.kind === "fresh";
        if (!involved || param?.kind === "unknown") return { status: 404, code: "not_found" };
        if (op.operationId === "cancelPayment") {
          // Only the sender cancels (admin and recipient: 403), and only a pending payment.
          if (admin || param?.kind === "received") return { status: 403, code: "forbidden" };
          if (param?.kind === "own") return { status: 409, code: "conflict" };
          return ok((b) => expect((b.payment as { status: string }).status).toBe("cancelled"));
        }
        if (op.operationId === "getPayment") return ok((b) => expect(id(b.payment)).toBe(param?.resolved));
        return ok((b) => expect((b.items as unknown[]).length).toBeGreaterThan(0));
      }
      default:
        return ok();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // ---------------------------------------------------------------------------------------------
  // Stateful sequences: users pay, read, cancel and edit, as owners, strangers and the administrator,
  // with invalid calls in between; a model says what each answer must be.

  interface ModelPayment {
    id: string;
    sender: number;
    recipient: number;
    status: "pending" | "completed" | "failed" | "cancelled";
    key: string;
    body: Record<string, unknown>;
  }
  interface Model {
    users: Account[];
    bios: (string | null)[];
    payments: ModelPayment[];
  }
  /** An actor of a sequence: one of its three users, or the administrator. */
  type Who = number;
  const ADMIN = 3;
  const accountOf = (model: Model, who: Who) => (who === ADMIN ? fx.admin : (model.users[who] as Account));
  const bodyOf = (answer: Answer) => JSON.parse(answer.text);

  /** Another user's payment or profile must not show up in a refusal: no id, amount or text of it. */
  function revealsNothing(answer: Answer, secrets: (string | null | undefined)[]) {
    for (const secret of secrets) if (secret) expect(answer.text, "a refusal reveals another user's data").not.toContain(secret);
  }

  class Pay implements fc.AsyncCommand<Model, object> {
    constructor(
      readonly sender: number,
      readonly recipient: number,
      readonly cents: number,
      readonly scheduled: boolean,
    ) {}
    check = () => true;
    async run(model: Model) {
      const from = accountOf(model, this.sender);
      const to = accountOf(model, this.recipient);
      const amount = `${Math.floor(this.cents / 100)}.${String(this.cents % 100).padStart(2, "0")}`;
      const body: Record<string, unknown> = { recipientEmail: to.email, amount, ...(this.scheduled ? { type: "scheduled", scheduledFor: future() } : {}) };
      const key = randomUUID();
      const answer = await send("POST", "/payments", { headers: json(from.token, { "idempotency-key": key }), body: JSON.stringify(body) });
      if (this.sender === this.recipient) {
        expect(answer.status, answer.text).toBe(400);
        return;
      }
      expect(answer.status, answer.text).toBe(201);
      const payment = bodyOf(answer).payment;
      expect(payment).toMatchObject({ senderId: from.id, recipientId: to.id, status: "pending" });
      let status: ModelPayment["status"] = "pending";
      if (!this.scheduled) {
        await target.settle();
        // The local provider declines amounts above 10000.00 and completes all others.
        status = this.cents > 1_000_000 ? "failed" : "completed";
      }
      model.payments.push({ id: payment.id, sender: this.sender, recipient: this.recipient, status, key, body });
    }
    toString = () => `Pay(${this.sender}→${this.recipient}, ${this.cents}${this.scheduled ? ", scheduled" : ""})`;
  }

  class Replay implements fc.AsyncCommand<Model, object> {
    constructor(
      readonly payment: number,
      readonly changed: boolean,
    ) {}
    check = (model: Readonly<Model>) => model.payments.length > 0;
    async run(model: Model) {
      const payment = model.payments[this.payment % model.payments.length] as ModelPayment;
      const body = this.changed ? { ...payment.body, amount: "1.23" } : payment.body;
      const answer = await send("POST", "/payments", {
        headers: json(accountOf(model, payment.sender).token, { "idempotency-key": payment.key }),
        body: JSON.stringify(body),
      });
      if (this.changed && payment.body.amount !== "1.23") {
        expect(answer.status, answer.text).toBe(409);
        return;
      }
      // The first answer again (201, the payment as it was created), and nothing paid twice.
      expect(answer.status, answer.text).toBe(201);
      expect(answer.headers.get("idempotent-replayed")).toBe("true");
      expect(bodyOf(answer).payment.id).toBe(payment.id);
    }
    toString = () => `Replay(${this.payment}${this.changed ? ", changed" : ""})`;
  }

  /** sender, recipient, ADMIN or stranger. */
  const relation = (payment: ModelPayment, who: Who) =>
    who === payment.sender ? "sender" : who === payment.recipient ? "recipient" : who === ADMIN ? "admin" : "stranger";

  class ReadPayment implements fc.AsyncCommand<Model, object> {
    constructor(
      readonly who: Who,
      readonly payment: number,
      readonly history: boolean,
    ) {}
    check = (model: Readonly<Model>) => model.payments.length > 0;
    async run(model: Model) {
      const payment = model.payments[this.payment % model.payments.length] as ModelPayment;
      const path = `/payments/${payment.id}${this.history ? "/transactions" : ""}`;
      const answer = await send("GET", path, { headers: json(accountOf(model, this.who).token) });
      if (relation(payment, this.who) === "stranger") {
        expect(answer.status, answer.text).toBe(404);
        revealsNothing(answer, [payment.id, accountOf(model, payment.sender).id, accountOf(model, payment.recipient).id]);
        return;
      }
      expect(answer.status, answer.text).toBe(200);
      if (!this.history) expect(bodyOf(answer).payment).toMatchObject({ id: payment.id, status: payment.status });
      else {
        const expected = {
          pending: ["pending"],
          cancelled: ["pending", "cancelled"],
          completed: ["pending", "processing", "completed"],
          failed: ["pending", "processing", "failed"],
        };
        expect(bodyOf(answer).items.map((t: { status: string }) => t.status)).toEqual(expected[payment.status]);
      }
    }
    toString = () => `ReadPayment(${this.who}, ${this.payment}${this.history ? ", transactions" : ""})`;
  }

  class Cancel implements fc.AsyncCommand<Model, object> {
    constructor(
      readonly who: Who,
      readonly payment: number,
    ) {}
    check = (model: Readonly<Model>) => model.payments.length > 0;
    async run(model: Model) {
      const payment = model.payments[this.payment % model.payments.length] as ModelPayment;
      const answer = await send("POST", `/payments/${payment.id}/cancel`, { headers: json(accountOf(model, this.who).token) });
      const role = relation(payment, this.who);
      if (role === "stranger") {
        expect(answer.status, answer.text).toBe(404);
        revealsNothing(answer, [payment.id]);
      } else if (role !== "sender") expect(answer.status, answer.text).toBe(403);
      else if (payment.status !== "pending") expect(answer.status, answer.text).toBe(409);
      else {
        expect(answer.status, answer.text).toBe(200);
        expect(bodyOf(answer).payment.status).toBe("cancelled");
        payment.status = "cancelled";
      }
    }
    toString = () => `Cancel(${this.who}, ${this.payment})`;
  }

  class ListPayments implements fc.AsyncCommand<Model, object> {
    constructor(readonly who: number) {}
    check = () => true;
    async run(model: Model) {
      const me = accountOf(model, this.who);
      const answer = await send("GET", "/payments?limit=100", { headers: json(me.token) });
      expect(answer.status, answer.text).toBe(200);
      const items = bodyOf(answer).items as { id: string; senderId: string; recipientId: string; status: string }[];
      for (const item of items) expect([item.senderId, item.recipientId]).toContain(me.id);
      const mine = model.payments.filter((p) => p.sender === this.who || p.recipient === this.who);
      for (const payment of mine) expect(items.find((item) => item.id === payment.id)?.status).toBe(payment.status);
      const others = model.payments.filter((p) => p.sender !== this.who && p.recipient !== this.who).map((p) => p.id);
      expect(items.filter((item) => others.includes(item.id))).toEqual([]);
    }
    toString = () => `ListPayments(${this.who})`;
  }

  class EditProfile implements fc.AsyncCommand<Model, object> {
    constructor(
      readonly who: number,
      readonly bio: string | null,
    ) {}
    check = () => true;
    async run(model: Model) {
      const answer = await send("PATCH", "/profiles/me", { headers: json(accountOf(model, this.who).token), body: JSON.stringify({ bio: this.bio }) });
      expect(answer.status, answer.text).toBe(200);
      expect(bodyOf(answer).profile.bio).toBe(this.bio);
      model.bios[this.who] = this.bio;
    }
    toString = () => `EditProfile(${this.who}, ${JSON.stringify(this.bio)})`;
  }

  class ReadProfile implements fc.AsyncCommand<Model, object> {
    constructor(
      readonly who: Who,
      readonly target: number,
    ) {}
    check = () => true;
    async run(model: Model) {
      const subject = accountOf(model, this.target);
      const answer = await send("GET", `/profiles/${subject.id}`, { headers: json(accountOf(model, this.who).token) });
      if (this.who !== this.target && this.who !== ADMIN) {
        expect(answer.status, answer.text).toBe(403);
        revealsNothing(answer, [model.bios[this.target]]);
        return;
      }
      expect(answer.status, answer.text).toBe(200);
      expect(bodyOf(answer).profile).toMatchObject({ userId: subject.id, bio: model.bios[this.target] ?? null });
    }
    toString = () => `ReadProfile(${this.who}, ${this.target})`;
  }

  class AuditOf implements fc.AsyncCommand<Model, object> {
    constructor(
      readonly who: Who,
      readonly target: number,
    ) {}
    check = () => true;
    async run(model: Model) {
      const subject = accountOf(model, this.target);
      await target.settle();
      const answer = await send("GET", `/admin/audit-logs?userId=${subject.id}&limit=100`, { headers: json(accountOf(model, this.who).token) });
      if (this.who !== ADMIN) {
        expect(answer.status, answer.text).toBe(403);
        revealsNothing(answer, [subject.id]);
        return;
      }
      expect(answer.status, answer.text).toBe(200);
      const rows = bodyOf(answer).items as { userId: string; action: string; id: string }[];
      for (const row of rows) expect(row.userId).toBe(subject.id);
      expect(rows.filter((row) => row.action === "user.registered")).toHaveLength(1);
      // Each event once: no duplicated audit rows.
      expect(new Set(rows.map((row) => row.id)).size).toBe(rows.length);
    }
    toString = () => `AuditOf(${this.who}, ${this.target})`;
  }

  /** A request no operation accepts: the sequence goes on as if it had not been made. */
  class Garbage implements fc.AsyncCommand<Model, object> {
    constructor(
      readonly who: Who,
      readonly operation: number,
      readonly payload: string,
      readonly segment: string,
    ) {}
    check = () => true;
    async run(model: Model) {
      const op = target.operations[this.operation % target.operations.length] as ContractOperation;
      const path = op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(this.segment));
      const answer = await send(op.method, path, {
        headers: json(accountOf(model, this.who).token, { "idempotency-key": "garbage" }),
        ...(["GET", "DELETE"].includes(op.method) ? {} : { body: this.payload }),
      });
      expect(answer.status, answer.text).toBeLessThan(500);
      if (answer.status >= 400)
        expect(
          contractProblems(op, answer, target.leaks).filter((p) => !p.startsWith("status")),
          answer.text,
        ).toEqual([]);
    }
    toString = () => `Garbage(${this.who}, ${this.operation}, ${JSON.stringify(this.payload).slice(0, 40)}, ${JSON.stringify(this.segment)})`;
  }

  const who = fc.integer({ min: 0, max: ADMIN });
  const user = fc.integer({ min: 0, max: 2 });
  const index = fc.nat({ max: 50 });
  const pays = fc
    .tuple(user, user, fc.oneof(fc.integer({ min: 1, max: 2_000_000 }), fc.constantFrom(1_000_000, 1_000_001)), fc.boolean())
    .map(([s, r, c, sch]) => new Pay(s, r, c, sch));
  const commands = [
    // Listed three times: most other commands need payments to act on.
    pays,
    pays,
    pays,
    fc.tuple(index, fc.boolean()).map(([p, changed]) => new Replay(p, changed)),
    fc.tuple(who, index, fc.boolean()).map(([w, p, h]) => new ReadPayment(w, p, h)),
    fc.tuple(who, index).map(([w, p]) => new Cancel(w, p)),
    user.map((w) => new ListPayments(w)),
    fc
      .tuple(
        user,
        fc.option(
          fc.string({ unit: "grapheme", minLength: 1, maxLength: 60 }).filter((s) => !/\p{Cc}/u.test(s) && s.trim() === s),
          { nil: null },
        ),
      )
      .map(([w, bio]) => new EditProfile(w, bio)),
    fc.tuple(who, user).map(([w, t]) => new ReadProfile(w, t)),
    fc.tuple(who, user).map(([w, t]) => new AuditOf(w, t)),
    fc
      .tuple(
        who,
        fc.nat(),
        fc.oneof(fc.json({ maxDepth: 2 }), fc.string({ maxLength: 50 })),
        fc.oneof(
          fc.uuid(),
          fc.string({ minLength: 1, maxLength: 20 }).filter((s) => wellFormed(s) && s !== "." && s !== ".."),
        ),
      )
      .map(([w, o, p, s]) => new Garbage(w, o, p, s)),
  ];

  async function setup() {
    const signedIn = await send("POST", "/auth/login", { headers: json(), body: JSON.stringify(target.admin) });
    expect(signedIn.status, signedIn.text).toBe(200);
    const admin = JSON.parse(signedIn.text);
    fx.admin = { id: admin.user.id, email: target.admin.email, password: target.admin.password, token: admin.accessToken, refreshToken: admin.refreshToken };
    registered.add(target.admin.email.toLowerCase());
    fx.alice = await register("alice");
    fx.bob = await register("bob");
    fx.carol = await register("carol");
    fx.login = await register("login");
    fx.sent = await pay(fx.alice, fx.bob);
    fx.received = await pay(fx.bob, fx.alice, { type: "scheduled", scheduledFor: future() });
    fx.foreign = await pay(fx.bob, fx.carol);
    const put = await send("PUT", `/admin/config/${fx.configKey}`, { headers: json(fx.admin.token), body: JSON.stringify({ value: 1 }) });
    expect(put.status, put.text).toBe(200);
    await target.settle();
  }

  async function fuzz(op: ContractOperation, runs: number) {
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(plans(op), async (plan) => {
        const { path, init, expectation } = await realize(op, plan);
        const answer = await send(op.method, path, init);
        statuses.set(String(answer.status), (statuses.get(String(answer.status)) ?? 0) + 1);
        const where = `${op.method} ${path} ${JSON.stringify(init).slice(0, 400)} → ${answer.status} ${answer.text.slice(0, 300)}`;
        expect(contractProblems(op, answer, target.leaks), where).toEqual([]);
        if (expectation.status !== undefined) expect(answer.status, where).toBe(expectation.status);
        if (expectation.code !== undefined) expect(JSON.parse(answer.text).error.code, where).toBe(expectation.code);
        if (answer.status < 300 && expectation.check) expectation.check(JSON.parse(answer.text));
        if (op.operationId === "registerUser" && answer.status === 201) registered.add(JSON.parse(answer.text).user.email.toLowerCase());
      }),
      { numRuns: runs, examples: [[validPlan(op)]] },
    );
    return statuses;
  }

  async function sequences(runs: number) {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: "max" }), async (sequence) => {
        const users = [await register("seq-a"), await register("seq-b"), await register("seq-c")];
        await target.settle();
        const model: Model = { users, bios: [null, null, null], payments: [] };
        await fc.asyncModelRun(() => ({ model, real: {} }), sequence);
      }),
      { numRuns: runs },
    );
  }

  return { setup, fuzz, sequences };
}
