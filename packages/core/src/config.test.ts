import { describe, expect, test } from "vitest";
import * as z from "zod/mini";
import { ConfigError, databaseUrlFor, parseCommonConfig, parseEnv, parseServiceConfig, stageSchema } from "./config";

const secret = "s3cr3t-Value-9f8e7d";

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

/** A transformed variable: parseEnv returns the schema's output, not the raw string. */
const flag = z.pipe(
  z.optional(z.string()),
  z.transform((value) => value === "yes"),
);
const schema = z.object({
  PORT: z.coerce.number().check(z.int(), z.minimum(1), z.maximum(65535)),
  MODE: z.enum(["fast", "safe"]),
  CALLBACK_URL: z.url(),
  SIGNING_KEY: z.string().check(z.minLength(32)),
  STAGE: stageSchema,
  DEBUG: flag,
});
const valid = { PORT: "8080", MODE: "safe", CALLBACK_URL: "https://example.com/cb", SIGNING_KEY: "k".repeat(32), STAGE: "dev-1" };

describe("parseEnv", () => {
  test("returns typed values", () => {
    expect(parseEnv(schema, { ...valid, DEBUG: "yes" })).toEqual({
      PORT: 8080,
      MODE: "safe",
      CALLBACK_URL: "https://example.com/cb",
      SIGNING_KEY: "k".repeat(32),
      STAGE: "dev-1",
      DEBUG: true,
    });
    expect(parseEnv(schema, valid).DEBUG).toBe(false);
  });

  test("a missing variable is named as required", () => {
    const { MODE: _mode, ...rest } = valid;
    const error = configError(() => parseEnv(schema, rest));
    expect(error.problems).toEqual(["MODE is required"]);
    expect(error.message).toBe("Invalid configuration:\n  - MODE is required");
  });

  test("every invalid variable is named and no value is echoed", () => {
    const env = { PORT: secret, MODE: secret, CALLBACK_URL: secret, SIGNING_KEY: secret, STAGE: secret };
    const error = configError(() => parseEnv(schema, env));
    expect(error.problems.sort()).toEqual([
      "CALLBACK_URL: must be a valid url",
      "MODE: must be one of fast, safe",
      "PORT: must be a number",
      "SIGNING_KEY: must be at least 32 characters",
      "STAGE: must be lower-case letters, digits and dashes",
    ]);
    expect(error.message).not.toContain(secret);
    expect(error.message).not.toContain("s3cr3t");
    expect(JSON.stringify(error.problems)).not.toContain(secret);
  });

  test("out-of-range values are named", () => {
    expect(configError(() => parseEnv(schema, { ...valid, PORT: "70000" })).problems).toEqual(["PORT: must be at most 65535"]);
    expect(configError(() => parseEnv(schema, { ...valid, PORT: "80.5" })).problems).toEqual(["PORT: must be an integer"]);
    expect(configError(() => parseEnv(schema, { ...valid, PORT: "" })).problems).toEqual(["PORT: must be at least 1"]);
    expect(configError(() => parseEnv(schema, { ...valid, STAGE: "Prod" })).problems).toEqual(["STAGE: must be lower-case letters, digits and dashes"]);
  });
});

describe("databaseUrlFor", () => {
  test("prefers <SERVICE>_DATABASE_URL and falls back to DATABASE_URL", () => {
    expect(databaseUrlFor("auth", { AUTH_DATABASE_URL: "pglite://a", DATABASE_URL: "pglite://b" })).toBe("pglite://a");
    expect(databaseUrlFor("auth", { PAYMENTS_DATABASE_URL: "pglite://p", DATABASE_URL: "pglite://b" })).toBe("pglite://b");
    expect(databaseUrlFor("auth", { AUTH_DATABASE_URL: "", DATABASE_URL: "pglite://b" })).toBe("pglite://b");
    expect(databaseUrlFor("auth", {})).toBeUndefined();
  });
});

describe("parseCommonConfig", () => {
  test("defaults", () => {
    const config = parseCommonConfig("auth", { DATABASE_URL: "pglite://memory" });
    expect(config).toMatchObject({
      STAGE: "local",
      LOG_LEVEL: "info",
      EVENT_BUS_NAME: "default",
      JWT_ISSUER: "enclave-auth",
      JWT_AUDIENCE: "enclave",
      DB_MAX_CONNECTIONS: 1,
      databaseUrl: "pglite://memory",
    });
  });

  test("a missing database URL names the service's variable", () => {
    const error = configError(() => parseCommonConfig("payments", {}));
    expect(error.problems).toEqual(["PAYMENTS_DATABASE_URL (or DATABASE_URL) is required"]);
  });

  test("all problems are reported together, values never echoed", () => {
    const error = configError(() =>
      parseCommonConfig("auth", { STAGE: `Prod ${secret}`, LOG_LEVEL: secret, DB_MAX_CONNECTIONS: secret, EVENT_BUS_ENDPOINT: secret }),
    );
    expect(error.problems.map((p) => p.split(/[: ]/)[0]).sort()).toEqual([
      "AUTH_DATABASE_URL",
      "DB_MAX_CONNECTIONS",
      "EVENT_BUS_ENDPOINT",
      "LOG_LEVEL",
      "STAGE",
    ]);
    expect(error.message).not.toContain("s3cr3t");
  });

  test("a database URL the factory cannot open is a start-up error that hides the URL", () => {
    const url = `mysql://admin:${secret}@db.internal/app`;
    const error = configError(() => parseCommonConfig("auth", { AUTH_DATABASE_URL: url }));
    expect(error.problems).toEqual([expect.stringMatching(/^AUTH_DATABASE_URL: must be/)]);
    expect(error.message).not.toContain(secret);
    const fallback = configError(() => parseCommonConfig("auth", { DATABASE_URL: `not a url ${secret}` }));
    expect(fallback.problems).toEqual([expect.stringMatching(/^DATABASE_URL: must be/)]);
    expect(fallback.message).not.toContain(secret);
    for (const ok of [
      "pglite://memory",
      "pglite://.data/auth",
      "postgres://u:p@localhost:5432/db",
      "postgresql://h/db?driver=neon",
      "postgres://u:p@ep-x.neon.tech/db",
    ]) {
      expect(parseCommonConfig("auth", { DATABASE_URL: ok }).databaseUrl).toBe(ok);
    }
  });

  test("AUTH_PUBLIC_JWKS must be a JWKS of public keys", () => {
    const publicKey = { kty: "EC", crv: "P-256", x: "x", y: "y" };
    expect(
      parseCommonConfig("auth", { DATABASE_URL: "pglite://memory", AUTH_PUBLIC_JWKS: JSON.stringify({ keys: [publicKey] }) }).AUTH_PUBLIC_JWKS,
    ).toBeDefined();
    const bad = [
      `{"keys": [${secret}`,
      JSON.stringify({ keys: [] }),
      JSON.stringify([publicKey]),
      JSON.stringify({ keys: [{ ...publicKey, d: secret }] }),
      JSON.stringify({ keys: [{ kty: "oct", k: secret }] }),
    ];
    for (const value of bad) {
      const error = configError(() => parseCommonConfig("auth", { DATABASE_URL: "pglite://memory", AUTH_PUBLIC_JWKS: value }));
      expect(error.problems, value).toEqual([expect.stringMatching(/^AUTH_PUBLIC_JWKS: must be a JWKS document/)]);
      expect(error.message).not.toContain(secret);
    }
  });
});

describe("parseServiceConfig", () => {
  test("reports the shared and the service's own variables at once, named after the service", () => {
    const own = z.object({ SERVICE_SIGNING_KEY: z.string().check(z.minLength(10)) });
    const error = configError(() => parseServiceConfig("payments", own, { LOG_LEVEL: "loud", SERVICE_SIGNING_KEY: secret.slice(0, 5) }));
    expect(error.service).toBe("payments");
    expect(error.message).toMatch(/^Invalid payments configuration:/);
    expect(error.problems).toEqual([
      "LOG_LEVEL: must be one of debug, info, warn, error",
      "PAYMENTS_DATABASE_URL (or DATABASE_URL) is required",
      "SERVICE_SIGNING_KEY: must be at least 10 characters",
    ]);
    expect(error.message).not.toContain(secret.slice(0, 5));
  });
});
