import { writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { build, type Metafile } from "esbuild";
import { nodejs } from "./plan";

/**
 * Builds one function the way the deployment does (`nodejs` in plan.ts: ESM, minified, split,
 * PGlite and node-postgres left out) into `outdir`, with the `require` shim SST's bundler adds
 * to ESM functions so CommonJS dependencies can `require()`. `infra:check`, the migrate bundle
 * test and the benchmarks all build through here, so they measure what is deployed.
 */
export async function bundleFunction(entry: string, outdir: string): Promise<{ main: string; metafile: Metafile }> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    target: "node24",
    format: nodejs.format,
    minify: nodejs.minify,
    splitting: nodejs.splitting,
    external: nodejs.esbuild.external,
    outdir,
    banner: { js: `import { createRequire as topLevelCreateRequire } from "module"; const require = topLevelCreateRequire(import.meta.url);` },
    logLevel: "error",
    metafile: true,
  });
  writeFileSync(join(outdir, "package.json"), '{"type":"module"}');
  return { main: join(outdir, `${basename(entry, ".ts")}.js`), metafile: result.metafile };
}
