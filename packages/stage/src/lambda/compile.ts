import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const compiled = new Map<string, Promise<string>>();

/**
 * A TypeScript module of this package as a plain `.mjs` file that a bare `node` can load: the
 * function processes run without tsx, as Lambda's runtime runs without it. The file is named by
 * its content, so concurrent test workers and later runs share it and an edited source never
 * meets a stale copy.
 */
export function compileModule(source: URL): Promise<string> {
  const path = fileURLToPath(source);
  let file = compiled.get(path);
  if (!file) {
    file = compile(path);
    compiled.set(path, file);
    file.catch(() => compiled.delete(path));
  }
  return file;
}

async function compile(path: string): Promise<string> {
  const result = await build({
    entryPoints: [path],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    write: false,
    logLevel: "silent",
  });
  const code = result.outputFiles[0]?.contents;
  if (!code) throw new Error(`esbuild produced nothing for ${path}`);
  const hash = createHash("sha256").update(code).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), "enclave-stage-runtime");
  const file = join(dir, `${basename(path, ".ts")}-${hash}.mjs`);
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true });
    const partial = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(partial, code);
    await rename(partial, file);
  }
  return file;
}
