import { mkdirSync } from "node:fs";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { build, type Metafile, type Plugin } from "esbuild";
import { nodejs } from "./sizing";

/**
 * Builds a Node.js function the way `sst deploy` does. SST's CLI answers a function's
 * `Runtime.Build` request with esbuild and these options (sst 4.17, pkg/runtime/node/build.go):
 * platform node, ESM, target esnext, `mainFields: ["module", "main"]`, keepNames, its
 * `createRequire`/`__filename`/`__dirname` banner, `.mjs` output, `pg-native` and `sharp`
 * always external, and the function's `nodejs` properties (minify, splitting, esbuild.external)
 * on top. The module field matters: it picks the ESM builds of packages that ship both, which
 * changes what a dynamically imported chunk exports.
 *
 * The stage capture answers `Runtime.Build` with this function, and `infra:check`, the bundle
 * tests and the benchmarks build through it, so all of them see the artifact that is deployed.
 */

/** The `nodejs` properties of an `sst.aws.Function`, as they reach `Runtime.Build`. */
export interface NodeBuildProperties {
  format?: "esm" | "cjs";
  minify?: boolean;
  splitting?: boolean;
  sourcemap?: boolean;
  banner?: string;
  esbuild?: { external?: string[] };
  install?: string[];
}

const alwaysExternal = ["sharp", "pg-native"];

const banner = [
  `import { createRequire as topLevelCreateRequire } from 'module';`,
  `const require = topLevelCreateRequire(import.meta.url);`,
  `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
  `const __filename = topLevelFileUrlToPath(import.meta.url)`,
  `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
];

export interface BuiltFunction {
  /** Lambda's handler string, relative to `out`: `api.handler`. */
  handler: string;
  /** The entry module's file. */
  main: string;
  out: string;
  metafile: Metafile;
}

/**
 * Builds `handler` (`functions/auth/api.handler`, relative to `root`) into `out`, which becomes
 * the root of the function's package.
 */
export async function buildFunction(options: {
  root: string;
  handler: string;
  properties: NodeBuildProperties;
  out: string;
  /** Only the benchmarks pass any: to measure a variant of the deployed bundle. */
  plugins?: Plugin[];
}): Promise<BuiltFunction> {
  const { root, handler, properties, out, plugins = [] } = options;
  if (properties.format === "cjs") throw new Error(`${handler}: CommonJS functions are not built here (every Enclave function is ESM)`);
  const exportName = extname(handler).slice(1);
  const file = resolve(root, handler.slice(0, -(exportName.length + 1)) + ".ts");
  // Lambda's handler string allows one dot: SST replaces the others in the file name.
  const fileName = basename(relative(root, file), ".ts").replaceAll(".", "-");
  mkdirSync(out, { recursive: true });
  const minify = properties.minify ?? false;
  const result = await build({
    entryPoints: [file],
    platform: "node",
    external: [...alwaysExternal, ...(properties.install ?? []), ...(properties.esbuild?.external ?? [])],
    keepNames: true,
    bundle: true,
    metafile: true,
    format: "esm",
    target: "esnext",
    mainFields: ["module", "main"],
    banner: { js: [...banner, properties.banner ?? ""].join("\n") },
    ...(properties.splitting ? { splitting: true, outdir: out, outExtension: { ".js": ".mjs" } } : { outfile: join(out, `${fileName}.mjs`) }),
    minifyWhitespace: minify,
    minifySyntax: minify,
    minifyIdentifiers: minify,
    sourcemap: properties.sourcemap ? "linked" : false,
    logLevel: "silent",
    plugins,
    write: true,
  });
  return { handler: `${fileName}.${exportName}`, main: join(out, `${fileName}.mjs`), out, metafile: result.metafile };
}

/**
 * Builds one of this repository's entry points (`functions/auth/api.ts`) with the deployment's
 * `nodejs` settings (plan.ts) into `outdir`.
 */
export async function bundleFunction(entry: string, outdir: string, plugins: Plugin[] = []): Promise<{ main: string; metafile: Metafile }> {
  const root = resolve(import.meta.dirname, "..");
  const handler = `${relative(root, resolve(entry)).slice(0, -".ts".length)}.handler`;
  const built = await buildFunction({ root, handler, properties: nodejs, out: outdir, plugins });
  if (dirname(built.main) !== resolve(outdir)) throw new Error(`unexpected output ${built.main}`);
  return { main: built.main, metafile: built.metafile };
}
