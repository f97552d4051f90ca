import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { pgSchema, text, uuid } from "drizzle-orm/pg-core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isConnectionError } from "../errors";
import { uuidv7 } from "../ids";
import { createTestDatabase, type TestDatabase, testServerUrl } from "../testing/database";
import { writeMigrationsFolder } from "../testing/migrations";
import { type NeonLocalEndpoint, startNeonLocalEndpoint } from "../testing/neon-http-endpoint";
import { describeDatabaseFailure } from "./failures";
import { migrate, noTransactionMarker } from "./migrate";
import { NeonHttpError, neonHttpClient, neonHttpEndpoint, parseArray } from "./neon-http";

describe("Neon HTTP client without a server", () => {
  test("Neon's endpoint for a compute host is api.<region>/sql", () => {
    expect(neonHttpEndpoint("postgres://u:p@ep-cool-bird-123456.us-east-2.aws.neon.tech/db?sslmode=require")).toBe("https://api.us-east-2.aws.neon.tech/sql");
  });

  test("array literals: quoting, escapes, NULL and element parsing", () => {
    expect(parseArray("{}")).toEqual([]);
    expect(parseArray('{a,"b c","d\\"e",NULL,"NULL"}')).toEqual(["a", "b c", 'd"e', null, "NULL"]);
    expect(parseArray("{1,2,NULL}", Number)).toEqual([1, 2, null]);
  });

  test("a kept-alive connection the server dropped is retried once on a new one", async () => {
    const served = new WeakMap<object, number>();
    let requests = 0;
    const server = createServer((request, response) => {
      requests++;
      const count = (served.get(request.socket) ?? 0) + 1;
      served.set(request.socket, count);
      request.resume();
      // The second request on a connection: the server drops it unanswered, as an idle-closed connection does.
      if (count === 2) return request.socket.destroy();
      const body = JSON.stringify({ command: "SELECT", rowCount: 1, fields: [{ name: "n", dataTypeID: 23 }], rows: [["1"]], rowAsArray: true });
      response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = neonHttpClient("postgres://u@127.0.0.1:5432/db", { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sql` });
    try {
      expect(await client("select 1 as n")).toEqual([{ n: 1 }]);
      expect(await client("select 1 as n")).toEqual([{ n: 1 }]);
      expect(requests).toBe(3);
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("an endpoint that stops answering: the request fails with ETIMEDOUT (a 503), and its late answer never reaches the next one", async () => {
    let requests = 0;
    const server = createServer((request, response) => {
      requests++;
      request.resume();
      const answer = (n: number) => {
        const body = JSON.stringify({ command: "SELECT", rowCount: 1, fields: [{ name: "n", dataTypeID: 23 }], rows: [[String(n)]], rowAsArray: true });
        if (!response.destroyed) response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
      };
      // The first request is answered long after the client's timeout; later ones at once.
      if (requests === 1) setTimeout(() => answer(1), 600);
      else answer(requests);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = neonHttpClient("postgres://u@127.0.0.1:5432/db", {
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sql`,
      timeoutMs: 150,
    });
    try {
      const error = await client("select 1 as n").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NeonHttpError);
      expect(error).toMatchObject({ code: "ETIMEDOUT", message: "Error connecting to database: no answer within 150 ms" });
      expect(isConnectionError(error)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(await client("select 2 as n")).toEqual([{ n: 2 }]);
      expect(requests).toBe(2);
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("a refused connection keeps its code, so start-up reports it in one line", async () => {
    const url = "postgres://app:secret@127.0.0.1:1/auth";
    const client = neonHttpClient(url, { endpoint: "http://127.0.0.1:1/sql" });
    const error = await client("select 1").catch((e: unknown) => e);
    client.close();
    expect((error as { code?: string }).code).toBe("ECONNREFUSED");
    expect(describeDatabaseFailure("AUTH_DATABASE_URL", url, error)).toBe(
      "AUTH_DATABASE_URL: cannot connect to 127.0.0.1:1 (connection refused); is the server running?",
    );
  });
});

const schema = pgSchema("neonhttp");
const things = schema.table("things", { id: uuid("id").primaryKey(), name: text("name").notNull().unique() });

// Against the local PostgreSQL server through a local endpoint that speaks Neon's protocols.
describe.skipIf(!testServerUrl)("Neon over HTTP, WebSocket for transactions (skipped: set TEST_DATABASE_URL to run it)", () => {
  let endpoint: NeonLocalEndpoint;
  let database: TestDatabase;
  let direct: pg.Client;

  beforeAll(async () => {
    endpoint = await startNeonLocalEndpoint();
    database = await createTestDatabase([], { driver: "neon", neonWsProxy: endpoint.wsProxy });
    const url = new URL(database.url);
    url.searchParams.delete("driver");
    direct = new pg.Client({ connectionString: url.toString() });
    await direct.connect();
    await direct.query(`create schema neonhttp; create table neonhttp.things (id uuid primary key, name text not null unique)`);
  });
  afterAll(async () => {
    await direct?.end();
    await database?.dispose();
    await endpoint?.close();
  });

  test("values come back as node-postgres returns them", async () => {
    const query = `select true as b, 7::int2 as i2, 42 as i4, 9007199254740993::int8 as i8, 1.5::float8 as f, 12.50::numeric(10,2) as n,
      '{"a":[1,"x"]}'::jsonb as jb, '[1]'::json as j, '\\x00ff'::bytea as bin, '2026-01-02T03:04:05.678Z'::timestamptz as ts,
      '2026-01-02'::date as d, 'b9a3c9b2-8f2e-4c55-9a55-1f1e0b6f6a11'::uuid as u, array['a','b c',null] as ta, array[1,2] as ia,
      null::text as nothing, 'plain' as t, 'null'::jsonb as json_null`;
    const viaHttp = (await database.rawQuery(query)) as { rows: Record<string, unknown>[] };
    const viaPg = await direct.query(query);
    // drizzle keeps times as text with every driver; node-postgres' defaults parse them to Date.
    const { ts, d, ...rest } = viaHttp.rows[0] as Record<string, unknown>;
    const { ts: pgTs, d: pgD, ...pgRest } = viaPg.rows[0] as Record<string, unknown>;
    expect(rest).toEqual(pgRest);
    expect(new Date(ts as string).toISOString()).toBe((pgTs as Date).toISOString());
    expect(d).toBe("2026-01-02");
    expect(pgD).toBeInstanceOf(Date);
  });

  test("parameters of every kind reach the server as node-postgres sends them", async () => {
    const when = new Date("2026-05-06T07:08:09.010Z");
    const result = (await database.rawQuery(
      "select $1::timestamptz = '2026-05-06T07:08:09.010Z' as date_ok, $2::bytea = '\\x0102' as bytes_ok, $3::text[] as arr, $4::jsonb as obj, $5::int + 1 as n, $6::bool as flag, $7::text as nothing",
      [when, Buffer.from([1, 2]), ["x", 'y"z', null], { k: [1, 2] }, 41, false, null],
    )) as { rows: Record<string, unknown>[] };
    expect(result.rows[0]).toEqual({ date_ok: true, bytes_ok: true, arr: ["x", 'y"z', null], obj: { k: [1, 2] }, n: 42, flag: false, nothing: null });
  });

  test("drizzle statements outside a transaction are one HTTP request each and open no WebSocket", async () => {
    endpoint.reset();
    const before = { connections: endpoint.connections, statements: database.stats.queries };
    const id = uuidv7();
    await database.db.insert(things).values({ id, name: "one" });
    const rows = await database.db.select().from(things).where(eq(things.id, id));
    expect(rows).toEqual([{ id, name: "one" }]);
    expect(database.stats.queries - before.statements).toBe(2);
    expect(endpoint.roundTrips).toBe(2);
    expect(endpoint.connections).toBe(before.connections);
  });

  test("a failing statement reports the server's code and constraint under drizzle's wrapper", async () => {
    await database.db.insert(things).values({ id: uuidv7(), name: "dup" });
    const error = await database.db
      .insert(things)
      .values({ id: uuidv7(), name: "dup" })
      .catch((e: unknown) => e);
    const cause = (error as { cause?: { code?: string; constraint?: string } }).cause;
    expect(cause?.code).toBe("23505");
    expect(cause?.constraint).toBe("things_name_key");
  });

  test("db.transaction runs over a WebSocket connection and rolls back as a whole", async () => {
    const id = uuidv7();
    const connections = endpoint.connections;
    await expect(
      database.db.transaction(async (tx) => {
        await tx.insert(things).values({ id, name: "rolled back" });
        await tx.execute(sql`select 1/0`);
      }),
    ).rejects.toThrow();
    expect(endpoint.connections).toBeGreaterThan(connections);
    expect(await database.db.select().from(things).where(eq(things.id, id))).toEqual([]);
    const kept = uuidv7();
    await database.db.transaction(async (tx) => {
      await tx.insert(things).values({ id: kept, name: "kept" });
    });
    expect(await database.db.select({ name: things.name }).from(things).where(eq(things.id, kept))).toEqual([{ name: "kept" }]);
  });

  test("a migration marked no-transaction (a concurrent index build) runs on a WebSocket session of its own", async () => {
    const dir = await mkdtemp(join(tmpdir(), "neon-migrations-"));
    try {
      await writeMigrationsFolder(dir, [
        { tag: "0000_init", sql: `CREATE TABLE "neonmig"."items" ("id" uuid PRIMARY KEY, "name" text NOT NULL);` },
        {
          tag: "0001_name_idx",
          sql: `${noTransactionMarker}\nCREATE INDEX CONCURRENTLY IF NOT EXISTS "items_name_idx" ON "neonmig"."items" USING btree ("name");`,
        },
      ]);
      await direct.query("create schema if not exists neonmig");
      expect(await migrate(database.db, "neonmig", dir)).toEqual({ applied: ["0000_init", "0001_name_idx"] });
      const index = await direct.query(
        `select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = 'items_name_idx'`,
      );
      expect(index.rows).toEqual([{ valid: true }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a batch is one request, run in one transaction", async () => {
    const url = new URL(database.url);
    url.searchParams.delete("driver");
    const client = neonHttpClient(url.toString(), { endpoint: `http://127.0.0.1:${endpoint.port}/sql` });
    try {
      const id = uuidv7();
      endpoint.reset();
      await expect(
        client.transaction([
          { query: "insert into neonhttp.things (id, name) values ($1, $2)", params: [id, "batched"] },
          { query: "select 1/0", params: [] },
        ]),
      ).rejects.toMatchObject({ code: "22012" });
      expect(endpoint.roundTrips).toBe(1);
      expect((await direct.query("select 1 from neonhttp.things where id = $1", [id])).rowCount).toBe(0);
      const [inserted, counted] = await client.transaction([
        { query: "insert into neonhttp.things (id, name) values ($1, $2)", params: [id, "batched"] },
        { query: "select count(*)::int as n from neonhttp.things where id = $1", params: [id] },
      ]);
      expect(inserted?.rowCount).toBe(1);
      expect(counted?.rows).toEqual([[1]]);
    } finally {
      client.close();
    }
  });

  test("the endpoint refuses connection strings for other servers", async () => {
    const client = neonHttpClient("postgres://postgres@10.0.0.1:5432/postgres", { endpoint: `http://127.0.0.1:${endpoint.port}/sql` });
    try {
      await expect(client("select 1")).rejects.toThrow(/HTTP status 403/);
    } finally {
      client.close();
    }
  });
});
