import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { openDatabase, serverUrl } from "@enclave/core/db/index";
import { migrate } from "@enclave/core/db/migrate";
import { migrationsDir, testServerUrl } from "@enclave/core/testing/database";
import pg from "pg";
import { type Service, services } from "./tables";

export { testServerUrl };

export const repositoryRoot = resolve(import.meta.dirname, "../../..");

/** Runs SQL on the server's maintenance database (TEST_DATABASE_URL), as an operator would. */
export async function onServer(statement: string) {
  const client = new pg.Client({ connectionString: serverUrl(testServerUrl as string) });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

export interface ServerDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the TEST_DATABASE_URL server, with a unique name; `drop` removes it. */
export async function createServerDatabase(label: string): Promise<ServerDatabase> {
  const name = `enclave_split_${label}_${randomBytes(4).toString("hex")}`;
  await onServer(`create database "${name}"`);
  const url = new URL(serverUrl(testServerUrl as string));
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => onServer(`drop database if exists "${name}" with (force)`) };
}

export interface Targets {
  databases: Record<Service, ServerDatabase>;
  /** `<SERVICE>_DATABASE_URL` for each service. */
  env: Record<string, string>;
  drop(): Promise<void>;
}

/** One migrated database per service, as a deployed stage has them. */
export async function createTargets(label: string): Promise<Targets> {
  const databases = {} as Record<Service, ServerDatabase>;
  for (const service of services) {
    const database = await createServerDatabase(`${label}_${service}`);
    databases[service] = database;
    const opened = await openDatabase(database.url, { maxConnections: 1 });
    try {
      await migrate(opened.db, service, migrationsDir(service));
    } finally {
      await opened.close();
    }
  }
  return {
    databases,
    env: Object.fromEntries(services.map((s) => [`${s.toUpperCase()}_DATABASE_URL`, databases[s].url])),
    drop: async () => {
      for (const s of services) await databases[s].drop();
    },
  };
}

/** A query on one database, its rows. */
export async function query<T = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("set timezone to 'UTC'");
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm run db:split -- …` as a user runs it: its own process, with only PATH and `env`. */
export function startSplit(args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<CliRun> } {
  const child = spawn(process.execPath, ["--import", "tsx", "packages/split/src/cli.ts", ...args], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => (stdout += chunk));
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  const done = new Promise<CliRun>((resolveRun) => child.on("close", (code) => resolveRun({ code, stdout, stderr })));
  return { child, done };
}

export const runSplitCli = (args: string[], env: Record<string, string>) => startSplit(args, env).done;

/** The report's row for a table: its numbers and the checksum column. */
export function reportRow(stdout: string, table: string) {
  const line = stdout.split("\n").find((l) => l.startsWith(`${table} `));
  if (!line) throw new Error(`no report row for ${table} in:\n${stdout}`);
  const [name, ...cells] = line.trim().split(/\s{2,}|\s+(?=\d)/);
  return { name, cells, line };
}
