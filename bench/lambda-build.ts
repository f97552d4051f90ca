import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Metafile, Plugin } from "esbuild";
import { bundleFunction } from "../infra/bundle";

export const root = resolve(import.meta.dirname, "..");

/** Builds a Lambda entry as deployed (infra/bundle.ts) and measures what a cold start loads. */
export async function buildLambda(entry: string, outdir: string) {
  const { main, metafile } = await bundleFunction(join(root, entry), outdir);
  return { main, metafile, ...summarize(metafile, outdir, entry) };
}

/**
 * Builds an entry as deployed (infra/bundle.ts), with some of its modules swapped for others
 * (`{ "packages/core/src/db/neon.ts": "bench/variants/neon-ws-only.ts" }`): how the bench measures
 * a variant of the real bundle. Also builds the peers (no swaps), as their own entries.
 */
export async function buildVariant(entry: string, outdir: string, swaps: Record<string, string> = {}) {
  const replacements = new Map(Object.entries(swaps).map(([from, to]) => [join(root, from), join(root, to)]));
  const swap: Plugin = {
    name: "swap",
    setup(b) {
      b.onResolve({ filter: /^\./ }, (args) => {
        for (const [from, to] of replacements) {
          if (resolve(args.resolveDir, args.path) === from.replace(/\.ts$/, "") || resolve(args.resolveDir, args.path) === from) return { path: to };
        }
        return undefined;
      });
    },
  };
  const { main, metafile } = await bundleFunction(join(root, entry), outdir, [swap]);
  return { main, metafile, ...summarize(metafile, outdir, entry) };
}

export interface BundleSummary {
  /** The entry file. */
  entryBytes: number;
  /** Entry plus the chunks it imports statically: what is loaded before the first request. */
  coldBytes: number;
  /** Every file, including chunks only loaded on demand. */
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

/** What a set of output files (by base name) holds, grouped: the database driver's share and the largest packages. */
export function composition(metafile: Metafile, loadedFiles: string[]) {
  const loaded = new Set(loadedFiles);
  const byGroup = new Map<string, number>();
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (!loaded.has(file.replace(/^.*\//, ""))) continue;
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      byGroup.set(groupOf(input), (byGroup.get(groupOf(input)) ?? 0) + bytesInOutput);
    }
  }
  const groups = [...byGroup.entries()].sort((a, b) => b[1] - a[1]);
  const driver = groups
    .filter(([group]) => group === "@neondatabase/serverless" || group === "enclave: Neon HTTP client")
    .reduce((sum, [, bytes]) => sum + bytes, 0);
  return { driverBytes: driver, groups: groups.map(([group, bytes]) => ({ group, bytes })) };
}

function groupOf(input: string): string {
  const modules = input.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = input.slice(modules + "node_modules/".length).split("/");
    const name = rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] as string);
    if (name === "drizzle-orm") return rest[1]?.startsWith("neon") ? `drizzle-orm/${rest[1]}` : "drizzle-orm";
    return name;
  }
  if (input.endsWith("db/neon-http.ts")) return "enclave: Neon HTTP client";
  const pkg = /packages\/([^/]+)\//.exec(input)?.[1];
  return pkg ? `enclave: ${pkg}` : `enclave: ${input.split("/")[0]}`;
}
