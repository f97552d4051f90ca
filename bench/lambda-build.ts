import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Metafile } from "esbuild";
import { bundleFunction } from "../infra/bundle";

export const root = resolve(import.meta.dirname, "..");

/** Builds a Lambda entry as deployed (infra/bundle.ts) and measures what a cold start loads. */
export async function buildLambda(entry: string, outdir: string) {
  const { main, metafile } = await bundleFunction(join(root, entry), outdir);
  return { main, ...summarize(metafile, outdir, entry) };
}

export interface BundleSummary {
  /** The entry file. */
  entryBytes: number;
  /** Entry plus the chunks it imports statically: what a cold start loads before the first request. */
  coldBytes: number;
  /** Every file, including chunks only loaded on demand (Neon driver, EventBridge SDK, OpenAPI generator). */
  totalBytes: number;
  files: { file: string; bytes: number }[];
}

function summarize(metafile: Metafile, outdir: string, entryPoint: string): BundleSummary {
  const outputs = metafile.outputs;
  // Dynamically imported modules are entry points of their own chunks: find the Lambda's.
  const entry = Object.keys(outputs).find((file) => outputs[file]?.entryPoint?.endsWith(entryPoint)) as string;
  if (!entry) throw new Error(`no output for ${entryPoint}`);
  const cold = new Set<string>();
  const visit = (file: string) => {
    if (cold.has(file)) return;
    cold.add(file);
    for (const imported of outputs[file]?.imports ?? []) if (imported.kind === "import-statement" && outputs[imported.path]) visit(imported.path);
  };
  visit(entry);
  const files = readdirSync(outdir)
    .filter((f) => f.endsWith(".mjs"))
    .map((f) => ({ file: f, bytes: statSync(join(outdir, f)).size }));
  const size = (file: string) => outputs[file]?.bytes ?? 0;
  return {
    entryBytes: size(entry),
    coldBytes: [...cold].reduce((sum, file) => sum + size(file), 0),
    totalBytes: files.reduce((sum, f) => sum + f.bytes, 0),
    files,
  };
}
