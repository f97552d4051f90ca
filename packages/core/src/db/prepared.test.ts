import { sql } from "drizzle-orm";
import { integer, pgSchema, text } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTestDatabase, type TestDatabase, testServerUrl } from "../testing/database";
import { type NeonProxy, startNeonProxy } from "../testing/neon-proxy";
import { preparedSql } from "./prepared";

const schema = pgSchema("prep");
const scores = schema.table("scores", { name: text("name").primaryKey(), value: integer("value").notNull() });

async function setUp(database: TestDatabase) {
  await database.db.execute(sql.raw(`create schema "prep"`));
  await database.db.execute(sql.raw(`create table "prep"."scores" ("name" text primary key, "value" integer not null)`));
  await database.db.execute(sql`insert into ${scores} ("name", "value") values ('a', 1), ('b', 2), ('c', 3)`);
}

/** A union with placeholders in both branches and in the limit, as a hot list route has. */
const topAndNamed = (database: TestDatabase) =>
  preparedSql(
    database.db,
    "prep_top_and_named",
    () => sql`select * from ((select * from ${scores} where "value" >= ${sql.placeholder("min")})
      union all (select * from ${scores} where "name" = ${sql.placeholder("name")})) as "both" order by "value" desc, "name" limit ${sql.placeholder("take")}`,
  );

function preparedSqlTests(open: () => TestDatabase) {
  test("runs with each call's values and answers the driver's rows", async () => {
    const statement = topAndNamed(open());
    expect(await statement.execute({ min: 3, name: "a", take: 10 })).toEqual([
      { name: "c", value: 3 },
      { name: "a", value: 1 },
    ]);
    expect(await statement.execute({ min: 2, name: "zz", take: 1 })).toEqual([{ name: "c", value: 3 }]);
  });

  test("is built once per database handle and name", async () => {
    let builds = 0;
    const build = () => {
      builds++;
      return sql`select count(*)::int as "n" from ${scores} where "value" > ${sql.placeholder("v")}`;
    };
    const database = open();
    const first = preparedSql(database.db, "prep_count", build);
    const again = preparedSql(database.db, "prep_count", build);
    expect(again).toBe(first);
    expect(builds).toBe(1);
    expect(await again.execute({ v: 1 })).toEqual([{ n: 2 }]);
  });
}

describe("preparedSql", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase([]);
    await setUp(database);
  });
  afterAll(() => database?.dispose());
  preparedSqlTests(() => database);
});

describe.skipIf(!testServerUrl)("preparedSql on the Neon driver (skipped: set TEST_DATABASE_URL to run it)", () => {
  let proxy: NeonProxy;
  let database: TestDatabase;
  beforeAll(async () => {
    proxy = await startNeonProxy();
    database = await createTestDatabase([], { driver: "neon", neonWsProxy: proxy.wsProxy });
    await setUp(database);
  });
  afterAll(async () => {
    await database?.dispose();
    await proxy?.close();
  });
  preparedSqlTests(() => database);
});
