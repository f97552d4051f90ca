import { neon, neonConfig } from "@neondatabase/serverless";
import { benchDatabaseUrl, benchNeonProxy, benchStatement } from "./statement";

/** The Neon driver's own HTTP function (`neon()`, over Node's fetch) and one query: what the HTTP client was measured against. */
neonConfig.fetchEndpoint = () => `http://${benchNeonProxy.replace(/\/.*$/, "")}/sql`;
const sql = neon(benchDatabaseUrl);
const statement = benchStatement();

export async function handler() {
  const rows = await sql.query(statement.query, statement.params);
  return { statusCode: 200, body: JSON.stringify(rows) };
}
