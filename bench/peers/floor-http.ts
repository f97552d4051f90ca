import { neonHttpClient } from "../../packages/core/src/db/neon-http";
import { benchDatabaseUrl, benchNeonProxy, benchStatement } from "./statement";

/** The floor of the HTTP path: Enclave's Neon HTTP client and one query, nothing else. */
const client = neonHttpClient(benchDatabaseUrl, { endpoint: `http://${benchNeonProxy.replace(/\/.*$/, "")}/sql` });
const statement = benchStatement();

export async function handler() {
  const rows = await client(statement.query, statement.params);
  return { statusCode: 200, body: JSON.stringify(rows) };
}
