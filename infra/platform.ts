import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * The SST platform (`.sst/platform`: its components and the aws, neon and random providers),
 * installed offline: no Pulumi download (SST_SKIP_DEPENDENCY_CHECK), Bun from the npm package
 * (SST_BUN_PATH), a temporary HOME so nothing lands in the user's home. `infra:check`, the
 * stage capture and its tests need it; `sst install` is idempotent.
 */

const root = resolve(import.meta.dirname, "..");

function bunBinary(): string {
  const arch = process.arch === "arm64" ? "aarch64" : "x64";
  const candidates = [
    `node_modules/@oven/bun-${process.platform}-${arch}/bin/bun`,
    `node_modules/@oven/bun-${process.platform}-${arch}-baseline/bin/bun`,
    `node_modules/@oven/bun-${process.platform}-${arch}-musl/bin/bun`,
    "node_modules/bun/bin/bun.exe",
  ].map((path) => join(root, path));
  for (const candidate of candidates) {
    if (existsSync(candidate) && spawnSync(candidate, ["--version"]).status === 0) return candidate;
  }
  throw new Error("no working Bun binary in node_modules (npm ci installs the bun package)");
}

export function platformInstalled(): boolean {
  return existsSync(join(root, ".sst/platform/config.d.ts")) && existsSync(join(root, ".sst/platform/node_modules/@pulumi/pulumi"));
}

/** Installs the platform; returns the providers it pinned. */
export function installPlatform(): { name: string; version: string }[] {
  const home = mkdtempSync(join(tmpdir(), "enclave-sst-home-"));
  const env = { ...process.env, HOME: home, SST_SKIP_DEPENDENCY_CHECK: "1", SST_TELEMETRY_DISABLED: "1", SST_BUN_PATH: bunBinary(), NO_COLOR: "1" };
  const result = spawnSync(join(root, "node_modules", ".bin", "sst"), ["install", "--stage", "infra-check"], { cwd: root, env, encoding: "utf8" });
  rmSync(home, { recursive: true, force: true });
  if (result.status !== 0) throw new Error(`sst install exited ${result.status}\n${result.stdout}\n${result.stderr}`);
  if (!platformInstalled()) throw new Error("sst install did not write .sst/platform");
  return JSON.parse(readFileSync(join(root, ".sst/provider-lock.json"), "utf8")) as { name: string; version: string }[];
}

/** Installs the platform unless it is there already. */
export function ensurePlatform(): void {
  if (!platformInstalled()) installPlatform();
}
