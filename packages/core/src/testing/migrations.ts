import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface FakeMigration {
  tag: string;
  sql: string;
  when?: number;
}

/** A migrations folder in drizzle-kit's format, made afresh in `dir`: meta/_journal.json plus one .sql file per entry. */
export async function writeMigrationsFolder(dir: string, migrations: FakeMigration[]): Promise<string> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, "meta"), { recursive: true });
  const entries = migrations.map((m, idx) => ({ idx, version: "7", when: m.when ?? 1_790_000_000_000 + idx * 1000, tag: m.tag, breakpoints: true }));
  await writeFile(join(dir, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }, null, 2));
  for (const m of migrations) await writeFile(join(dir, `${m.tag}.sql`), m.sql);
  return dir;
}
