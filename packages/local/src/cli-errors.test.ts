import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testServerUrl } from "@enclave/core/testing/database";
import { afterEach, describe, expect, test } from "vitest";
import { closedPort, runCli } from "./cli.testing";

const secret = "s3cr3t-Pa55";
const stackFrame = /^\s+at /m;

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "enclave-cli-errors-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A port something else listens on, until the test ends. */
async function takenPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  cleanup.push(() => new Promise((done) => server.close(done)));
  return (server.address() as AddressInfo).port;
}

const cli = (args: string[], env: Record<string, string>) => runCli(args, { LOCAL_CRONS: "0", SEED: "none", PORT: "0", ...env });

/** The PostgreSQL server the suite may use: TEST_DATABASE_URL, else the development one, if it answers. */
const serverUrl = new URL(testServerUrl ?? "postgres://postgres@127.0.0.1:5432/postgres");
const serverAnswers = await new Promise<boolean>((done) => {
  const socket = connect(Number(serverUrl.port || 5432), serverUrl.hostname);
  const answer = (answers: boolean) => {
    socket.destroy();
    done(answers);
  };
  socket.setTimeout(2_000);
  socket.once("connect", () => answer(true));
  socket.once("error", () => answer(false));
  socket.once("timeout", () => answer(false));
});

describe("npm run dev: a database that cannot be used", { timeout: 90_000 }, () => {
  // The services not under test share one in-memory PGlite: it starts faster than one per service.
  const othersInMemory = { DATABASE_URL: "pglite://memory" };

  test("connection refused: names the service, the variable, host and port; no password, no stack", async () => {
    const port = await closedPort();
    const result = await cli(["dev"], { DATA_DIR: dataDir(), ...othersInMemory, AUTH_DATABASE_URL: `postgres://nobody:${secret}@127.0.0.1:${port}/x` });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`auth: AUTH_DATABASE_URL: cannot connect to 127.0.0.1:${port} (connection refused); is the server running?\n`);
    expect(result.stdout).toBe("");
  });

  test("with LOG_LEVEL=debug the same line, then the stack, still without the password", async () => {
    const port = await closedPort();
    const result = await cli(["dev"], {
      DATA_DIR: dataDir(),
      ...othersInMemory,
      LOG_LEVEL: "debug",
      AUTH_DATABASE_URL: `postgres://nobody:${secret}@127.0.0.1:${port}/x`,
    });
    expect(result.code).toBe(1);
    const [first, ...rest] = result.stderr.split("\n");
    expect(first).toBe(`auth: AUTH_DATABASE_URL: cannot connect to 127.0.0.1:${port} (connection refused); is the server running?`);
    expect(rest.join("\n")).toMatch(stackFrame);
    expect(rest.join("\n")).toContain("ECONNREFUSED");
    expect(result.stderr).not.toContain(secret);
  });

  test("a value that is not a URL: said so, without echoing it, before DATA_DIR is touched", async () => {
    const dir = dataDir();
    const result = await cli(["dev"], { DATA_DIR: dir, AUTH_DATABASE_URL: `not a url ${secret}` });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("auth: AUTH_DATABASE_URL is not a valid URL (use pglite://memory, pglite://<dir>, postgres://… or a Neon URL)\n");
    expect(readdirSync(dir)).toEqual([]);
  });

  test("one DATABASE_URL for every service: one line naming them all", async () => {
    const port = await closedPort();
    const result = await cli(["migrate"], { DATA_DIR: dataDir(), DATABASE_URL: `postgres://nobody:${secret}@127.0.0.1:${port}/x` });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `auth, admin, profile, payments: DATABASE_URL: cannot connect to 127.0.0.1:${port} (connection refused); is the server running?\n`,
    );
  });

  test.skipIf(!serverAnswers)("a database that does not exist: its name, not the URL", async () => {
    const missing = new URL(serverUrl);
    missing.password = secret;
    missing.pathname = `/enclave_missing_${Date.now()}`;
    const result = await cli(["dev"], { DATA_DIR: dataDir(), ...othersInMemory, PROFILE_DATABASE_URL: missing.toString() });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`profile: PROFILE_DATABASE_URL: database "${missing.pathname.slice(1)}" does not exist\n`);
  });
});

describe("npm run dev: the port", { timeout: 90_000 }, () => {
  test("a port in use fails at once, before any database is opened or migrated, and says what to set", async () => {
    const port = await takenPort();
    const dir = dataDir();
    const result = await cli(["dev"], { DATA_DIR: dir, PORT: String(port) });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`port ${port} is already in use: set PORT to a free port (PORT=${port + 1} npm run dev)\n`);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("configuration", { timeout: 90_000 }, () => {
  test("a variable every service reads: one line naming the services and the variable", async () => {
    const result = await cli(["dev"], { DATA_DIR: dataDir(), LOG_LEVEL: "verbose" });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("auth, admin, profile, payments: LOG_LEVEL: must be one of debug, info, warn, error\n");
  });

  test("a variable of the local runtime itself", async () => {
    const result = await cli(["dev"], { DATA_DIR: dataDir(), PORT: "abc" });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("PORT: must be a number\n");
  });
});

describe("usage errors: one plain line and the usage, exit code 2", { timeout: 90_000 }, () => {
  const usage = /\n\nusage:\n {2}npm run dev .*\n[\s\S]*services: auth, admin, profile, payments\n$/;

  test("an unknown service", async () => {
    const result = await cli(["migrate", "--service", "nope"], { DATA_DIR: dataDir() });
    expect(result.code).toBe(2);
    expect(result.stderr.split("\n")[0]).toBe('unknown service "nope" (known: auth, admin, profile, payments)');
    expect(result.stderr).toMatch(usage);
    expect(result.stderr).not.toMatch(stackFrame);
    expect(result.stderr).not.toContain("{");
  });

  test("an unknown command, an unknown option, a missing value", async () => {
    const unknown = await cli(["serve"], {});
    expect([unknown.code, unknown.stderr.split("\n")[0]]).toEqual([2, 'unknown command "serve" (one of: dev, migrate, generate, seed, redrive, dlq, help)']);
    expect(unknown.stderr).toMatch(usage);
    const option = await cli(["dlq", "--servce", "auth"], {});
    expect([option.code, option.stderr.split("\n")[0]]).toEqual([2, "dlq has no option --servce"]);
    const value = await cli(["generate", "--service"], {});
    expect([value.code, value.stderr.split("\n")[0]]).toEqual([2, "--service needs a value"]);
  });

  test("help prints the usage and succeeds", async () => {
    const result = await cli(["help"], {});
    expect(result.code).toBe(0);
    expect(`\n\n${result.stdout}`).toMatch(usage);
  });
});
