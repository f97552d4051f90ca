/**
 * What tests of the whole local runtime share: a throwaway environment (DATA_DIR and a database
 * every service shares, PGlite or a fresh one on TEST_DATABASE_URL), the runtime served on a real
 * port, and Debian's Chromium for the browser tests.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { serve } from "@hono/node-server";
import { type Browser, chromium } from "playwright-core";
import type { LocalRuntime } from "./runtime";

/** A temp DATA_DIR and one database for every service: in-memory PGlite, or a fresh one on TEST_DATABASE_URL. */
export async function testEnvironment(overrides: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "enclave-local-"));
  const database = testServerUrl ? await createTestDatabase([]) : undefined;
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    DATABASE_URL: database?.url ?? "pglite://memory",
    LOCAL_CRONS: "0",
    SEED: "none",
    LOG_LEVEL: "error",
    ...overrides,
  };
  return {
    env,
    async dispose() {
      await database?.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The runtime on a free port of 127.0.0.1, as `npm run dev` serves it. */
export async function serveRuntime(runtime: LocalRuntime): Promise<{ base: string; close(): Promise<void> }> {
  const server = serve({ fetch: runtime.app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Headless Chromium (CHROMIUM_PATH, else Debian's); a missing one fails the test, never skips it. */
export async function launchChromium(purpose: string): Promise<Browser> {
  const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `No Chromium at ${chromiumPath}: ${purpose} needs Debian's chromium. ` +
        "Install it with `apt-get install chromium` (CI installs it), or point CHROMIUM_PATH at a Chromium binary.",
    );
  }
  return chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
}
