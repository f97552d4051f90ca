import { neonConfig, Pool } from "@neondatabase/serverless";
import { benchDatabaseUrl, benchNeonProxy, benchStatement } from "./statement";

/** The floor of the WebSocket path: the Neon driver's Pool and one query, nothing else. */
neonConfig.wsProxy = (host, port) => `${benchNeonProxy}?address=${host}:${port}`;
neonConfig.useSecureWebSocket = false;
neonConfig.pipelineTLS = false;
neonConfig.pipelineConnect = false;
const pool = new Pool({ connectionString: benchDatabaseUrl, max: 1 });
const statement = benchStatement();

export async function handler() {
  const result = await pool.query(statement.query, statement.params);
  return { statusCode: 200, body: JSON.stringify(result.rows) };
}
