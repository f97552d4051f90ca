import { spawn } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { generatePrivateJwk } from "../packages/core/src/keys";

/**
 * What sealing the secrets costs a cold start: a fresh Node process that reads the auth
 * service's configuration, (a) from plain variables, (b) with the database URL and the signing
 * key sealed in `resource.enc` as the deployment does it (SST's encrypted links). The
 * configuration code is bundled with esbuild, as the functions are, and each process reports
 * how long reading its configuration took; the whole process is timed too.
 *
 *   npx tsx bench/secrets-cold-start.ts [runs per variant, default 40]
 */

const runs = Number(process.argv[2] ?? 40);
const root = resolve(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "enclave-secrets-bench-"));

const entry = join(work, "entry.ts");
writeFileSync(
  entry,
  `import { parseCommonConfig, withSealedSettings } from ${JSON.stringify(join(root, "packages/core/src/config.ts"))};
const started = performance.now();
const env = withSealedSettings(process.env);
const sealedMs = performance.now() - started;
const config = parseCommonConfig("auth", env);
if (!env.AUTH_SIGNING_KEY || !config.databaseUrl) throw new Error("configuration incomplete");
process.stderr.write(JSON.stringify({ sealedMs, configMs: performance.now() - started }) + "\\n");
`,
);
const bundle = join(work, "config.mjs");
await build({
  entryPoints: [entry],
  outfile: bundle,
  bundle: true,
  platform: "node",
  format: "esm",
  minify: true,
  external: ["@electric-sql/pglite", "pg", "pg-native"],
  banner: { js: `import { createRequire } from "module"; const require = createRequire(import.meta.url);` },
  logLevel: "silent",
});

const secrets = {
  AUTH_DATABASE_URL: `postgres://auth_app:${randomBytes(30).toString("base64url")}@ep-bench-1-pooler.us-east-1.aws.neon.tech/auth?sslmode=require`,
  AUTH_SIGNING_KEY: JSON.stringify(generatePrivateJwk()),
};
const key = randomBytes(32);
const cipher = createCipheriv("aes-256-gcm", key, Buffer.alloc(12));
// The links of the auth API function: its two sealed variables and the bus.
const links = {
  SealedAuthDatabaseUrl: { variable: "AUTH_DATABASE_URL", value: secrets.AUTH_DATABASE_URL, type: "sst.sst.Linkable" },
  SealedAuthSigningKey: { variable: "AUTH_SIGNING_KEY", value: secrets.AUTH_SIGNING_KEY, type: "sst.sst.Linkable" },
  Bus: { name: "enclave-bench-BusBus-abcdefgh", arn: "arn:aws:events:us-east-1:123456789012:event-bus/enclave-bench-BusBus-abcdefgh", type: "sst.aws.Bus" },
};
writeFileSync(join(work, "resource.enc"), Buffer.concat([cipher.update(JSON.stringify(links)), cipher.final(), cipher.getAuthTag()]));

const base = { PATH: process.env.PATH ?? "", STAGE: "bench", LAMBDA_TASK_ROOT: work };
const variants = {
  plain: { ...base, ...secrets },
  sealed: { ...base, SST_KEY: key.toString("base64"), SST_KEY_FILE: "resource.enc" },
};

function once(env: Record<string, string>): Promise<{ processMs: number; sealedMs: number; configMs: number }> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn(process.execPath, [bundle], { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => {
      if (code !== 0) return fail(new Error(`exit ${code}: ${stderr}`));
      done({ processMs: performance.now() - started, ...(JSON.parse(stderr.trim().split("\n").at(-1)!) as { sealedMs: number; configMs: number }) });
    });
  });
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * values.length) - 1)]!;
const samples: Record<string, { processMs: number[]; sealedMs: number[]; configMs: number[] }> = {};
try {
  // Alternating, so drift in the machine's load falls on both variants alike.
  for (let i = 0; i < runs; i++) {
    for (const [name, env] of Object.entries(variants)) {
      const run = await once(env);
      const into = (samples[name] ??= { processMs: [], sealedMs: [], configMs: [] });
      into.processMs.push(run.processMs);
      into.sealedMs.push(run.sealedMs);
      into.configMs.push(run.configMs);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const ms = (value: number) => `${value.toFixed(2)} ms`;
process.stdout.write(`secrets at cold start, ${runs} fresh processes per variant (Node ${process.versions.node}, median / p95)\n`);
for (const [name, s] of Object.entries(samples)) {
  process.stdout.write(
    `  ${name.padEnd(7)} reading sealed settings ${ms(percentile(s.sealedMs, 50))} / ${ms(percentile(s.sealedMs, 95))}, whole configuration ${ms(percentile(s.configMs, 50))} / ${ms(percentile(s.configMs, 95))}, process ${ms(percentile(s.processMs, 50))} / ${ms(percentile(s.processMs, 95))}\n`,
  );
}
const extra = percentile(samples.sealed!.configMs, 50) - percentile(samples.plain!.configMs, 50);
process.stdout.write(`  sealing adds ${ms(extra)} (median) to reading the configuration\n`);
