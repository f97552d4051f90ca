/**
 * How a database that cannot be opened is described (core's db/failures, which the local runtime
 * and CLI print), and what of an error may reach a log line: driver errors of pg, the Neon driver
 * and PGlite, as they really arrive (wrapped by drizzle, by Node), never with a password or a
 * whole URL.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, describeError, openDatabase, parseCommonConfig, redactSecrets } from "@enclave/core";
import { databaseUrlProblem, describeDatabaseFailure } from "@enclave/core/db/failures";
import { afterAll, describe, expect, test } from "vitest";

const secret = "s3cr3t-Pa55";
const scratch = mkdtempSync(join(tmpdir(), "enclave-db-failures-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What drizzle throws for a failed query: the driver's error is its cause. */
const failedQuery = (cause: unknown) => Object.assign(new Error(`Failed query: select 1\nparams: ${secret}`), { query: "select 1", params: [secret], cause });
const driverError = (code: string, message: string) => Object.assign(new Error(message), { code });

async function openingFails(url: string): Promise<unknown> {
  try {
    const database = await openDatabase(url, { maxConnections: 1 });
    try {
      await database.ping();
    } finally {
      await database.close();
    }
  } catch (error) {
    return error;
  }
  throw new Error("expected opening to fail");
}

describe("databaseUrlProblem", () => {
  test("accepts what the drivers open", () => {
    for (const url of ["pglite://memory", "pglite://.data/local/auth", "postgres://u:p@localhost:5432/db", "postgresql://h/db?driver=neon"]) {
      expect(databaseUrlProblem("DATABASE_URL", url)).toBeUndefined();
    }
  });

  test("names the variable and never echoes the value", () => {
    expect(databaseUrlProblem("AUTH_DATABASE_URL", `not a url ${secret}`)).toBe(
      "AUTH_DATABASE_URL is not a valid URL (use pglite://memory, pglite://<dir>, postgres://… or a Neon URL)",
    );
    expect(databaseUrlProblem("AUTH_DATABASE_URL", `mysql://admin:${secret}@db/app`)).toBe(
      "AUTH_DATABASE_URL is not a PostgreSQL or PGlite URL (use pglite://memory, pglite://<dir>, postgres://… or a Neon URL)",
    );
    // Without "//", the parser reads the user as the scheme: it is not echoed either.
    expect(databaseUrlProblem("AUTH_DATABASE_URL", `admin:${secret}@db/app`)).not.toContain("admin");
  });
});

describe("describeDatabaseFailure", () => {
  const url = `postgres://app:${secret}@db.internal:6543/orders`;
  const explain = (error: unknown) => describeDatabaseFailure("PAYMENTS_DATABASE_URL", url, error);

  test("pg's errors under drizzle's wrapper, by code", () => {
    expect(explain(failedQuery(driverError("ECONNREFUSED", "connect ECONNREFUSED 10.0.0.1:6543")))).toBe(
      "PAYMENTS_DATABASE_URL: cannot connect to db.internal:6543 (connection refused); is the server running?",
    );
    expect(explain(failedQuery(driverError("ENOTFOUND", "getaddrinfo ENOTFOUND db.internal")))).toBe(
      "PAYMENTS_DATABASE_URL: cannot connect to db.internal:6543 (no such host); is the host name right?",
    );
    expect(explain(failedQuery(driverError("3D000", 'database "orders" does not exist')))).toBe('PAYMENTS_DATABASE_URL: database "orders" does not exist');
    expect(explain(failedQuery(driverError("28P01", 'password authentication failed for user "app"')))).toBe(
      'PAYMENTS_DATABASE_URL: the server at db.internal:6543 refused the password of user "app"',
    );
    expect(explain(failedQuery(driverError("28000", 'role "app" does not exist')))).toBe(
      'PAYMENTS_DATABASE_URL: the server at db.internal:6543 refused the login: role "app" does not exist',
    );
    expect(explain(failedQuery(new Error("Connection terminated due to connection timeout")))).toBe(
      "PAYMENTS_DATABASE_URL: cannot connect to db.internal:6543 (timed out); is the host reachable?",
    );
    expect(explain(failedQuery(new Error("The server does not support SSL connections")))).toBe(
      "PAYMENTS_DATABASE_URL: the server at db.internal:6543 does not support SSL; remove sslmode from the URL",
    );
  });

  test("Node's error for a host with several addresses, and the Neon driver's WebSocket error event", () => {
    const aggregate = new AggregateError([
      driverError("ECONNREFUSED", "connect ECONNREFUSED ::1:6543"),
      driverError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:6543"),
    ]);
    expect(explain(aggregate)).toBe("PAYMENTS_DATABASE_URL: cannot connect to db.internal:6543 (connection refused); is the server running?");
    class ErrorEvent {
      readonly type = "error";
      readonly error = new TypeError("fetch failed");
    }
    expect(describeDatabaseFailure("DATABASE_URL", `postgres://u:${secret}@ep-x.neon.tech/db`, failedQuery(new ErrorEvent()))).toBe(
      "DATABASE_URL: cannot open a WebSocket to ep-x.neon.tech (Neon driver); is the host right and reachable?",
    );
  });

  test("the database's name defaults to the user's, as libpq does", () => {
    expect(describeDatabaseFailure("DATABASE_URL", "postgres://carol@h", driverError("3D000", 'database "carol" does not exist'))).toBe(
      'DATABASE_URL: database "carol" does not exist',
    );
  });

  test("what is not about reaching the database is left to the caller", () => {
    expect(explain(failedQuery(driverError("42P01", 'relation "x" does not exist')))).toBeUndefined();
    expect(explain(new Error("something else"))).toBeUndefined();
  });

  test("a real refused connection (pg)", async () => {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const { port } = server.address() as AddressInfo;
    await new Promise((done) => server.close(done));
    const refused = `postgres://nobody:${secret}@127.0.0.1:${port}/x`;
    expect(describeDatabaseFailure("AUTH_DATABASE_URL", refused, await openingFails(refused))).toBe(
      `AUTH_DATABASE_URL: cannot connect to 127.0.0.1:${port} (connection refused); is the server running?`,
    );
  });

  test("PGlite: a file where its directory should be, and a directory that is not a PGlite cluster", async () => {
    const file = join(scratch, "a-file");
    writeFileSync(file, "not a directory");
    expect(describeDatabaseFailure("DATA_DIR", `pglite://${file}`, await openingFails(`pglite://${file}`))).toBe(
      `DATA_DIR: cannot keep the PGlite database in ${file} (a file is in the way)`,
    );
    const damaged = join(scratch, "damaged");
    mkdirSync(damaged);
    writeFileSync(join(damaged, "PG_VERSION"), "not a version");
    expect(describeDatabaseFailure("PROFILE_DATABASE_URL", `pglite://${damaged}`, await openingFails(`pglite://${damaged}`))).toBe(
      `PROFILE_DATABASE_URL: cannot open the PGlite database in ${damaged}: the directory is damaged or from another PGlite version; move it away to start afresh`,
    );
  });
});

describe("what of an error reaches a log line", () => {
  test("SQL text keeps its shape but loses its literals and comments", () => {
    const fields = describeError(new Error(`select password_hash from auth.users where email = 'a@b.c' -- ${secret}`));
    expect(fields.message).toBe("select password_hash from auth.users where email = '…' --…");
    expect(JSON.stringify(fields)).not.toContain(secret);
    expect(redactSecrets(`insert into auth.users (email) values ('it''s ${secret}') /* ${secret} */`)).toBe(
      "insert into auth.users (email) values ('…') /*…*/",
    );
  });

  test("URLs lose their user and password; driver messages stay as they are", () => {
    expect(describeError(new Error(`cannot reach postgres://app:${secret}@db:5432/x`)).message).toBe("cannot reach postgres://…@db:5432/x");
    expect(describeError(String(`postgres://app:${secret}@db/x`))).toEqual({ error: "postgres://…@db/x" });
    for (const message of [
      'insert or update on table "payments" violates foreign key constraint "payments_user_fk"',
      "could not update the user's settings: 'x' from 'y'",
    ]) {
      expect(describeError(new Error(message)).message).toBe(message);
    }
  });

  test("the stack is frames only, even under a message of several lines", () => {
    const { stack } = describeError(new Error(`line one\n${secret}`));
    expect(stack).toMatch(/^\s+at /);
    expect(stack).not.toContain(secret);
  });
});

describe("ConfigError", () => {
  test("names the service whose configuration it is; the problems stay as they were", () => {
    let error: unknown;
    try {
      parseCommonConfig("payments", {});
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).service).toBe("payments");
    expect((error as ConfigError).message).toBe("Invalid payments configuration:\n  - PAYMENTS_DATABASE_URL (or DATABASE_URL) is required");
    expect((error as ConfigError).problems).toEqual(["PAYMENTS_DATABASE_URL (or DATABASE_URL) is required"]);
  });
});
