/**
 * `npm run docs:lint`: builds every service's OpenAPI document in-process (no database, no
 * server), writes them to a temporary directory and lints each with Redocly (redocly.yaml) and
 * Spectral (.spectral.yaml). Any error or warning fails the run: the documents are what client
 * generators and readers rely on.
 *
 *   tsx packages/local/src/docs-lint.ts [--out <dir>]   (--out keeps the documents there)
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { openApiDocuments } from "./openapi-documents";

const root = resolve(import.meta.dirname, "../../..");

export type Linter = "redocly" | "spectral";
export type Severity = "error" | "warning" | "info" | "hint";

export interface LintProblem {
  linter: Linter;
  /** The document's file name, e.g. `payments.openapi.json`. */
  file: string;
  severity: Severity;
  rule: string;
  message: string;
  /** Where in the document: a JSON pointer or path. */
  where: string;
}

export interface LintReport {
  dir: string;
  files: string[];
  problems: LintProblem[];
}

interface RedoclyReport {
  problems?: { ruleId: string; severity: string; message: string; location?: { pointer?: string }[] }[];
}

/** Problems of Redocly's `--format=json` report on one document. */
export function redoclyProblems(file: string, report: unknown): LintProblem[] {
  return ((report as RedoclyReport).problems ?? []).map((problem) => ({
    linter: "redocly" as const,
    file,
    severity: problem.severity === "error" ? "error" : problem.severity === "warn" ? "warning" : "info",
    rule: problem.ruleId,
    message: problem.message,
    where: problem.location?.[0]?.pointer ?? "",
  }));
}

interface SpectralResult {
  code: string | number;
  severity: number;
  message: string;
  path?: (string | number)[];
  source?: string;
}

const spectralSeverities: Severity[] = ["error", "warning", "info", "hint"];

/** Problems of Spectral's `--format json` report (its severities: 0 error, 1 warning, 2 info, 3 hint). */
export function spectralProblems(report: unknown): LintProblem[] {
  return (report as SpectralResult[]).map((result) => ({
    linter: "spectral" as const,
    file: result.source ? (result.source.split(/[\\/]/).pop() ?? result.source) : "",
    severity: spectralSeverities[result.severity] ?? "error",
    rule: String(result.code),
    message: result.message,
    where: (result.path ?? []).join("."),
  }));
}

/** What fails the run: every error and every warning, of either linter. */
export const failing = (problems: LintProblem[]) => problems.filter((problem) => problem.severity === "error" || problem.severity === "warning");

/** Runs a linter's CLI on this process's Node (the repository's), from the repository root. */
function runCli(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const path = join(root, "node_modules", script);
  if (!existsSync(path)) throw new Error(`${script} is not installed: run npm install`);
  return new Promise((done) => {
    execFile(
      process.execPath,
      [path, ...args],
      {
        cwd: root,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" },
      },
      (error, stdout, stderr) => done({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

function parseReport(linter: Linter, output: { code: number; stdout: string; stderr: string }): unknown {
  try {
    return JSON.parse(output.stdout);
  } catch {
    throw new Error(`${linter} gave no report (exit ${output.code}):\n${output.stderr || output.stdout}`);
  }
}

async function redocly(dir: string, file: string): Promise<LintProblem[]> {
  // One document per run: with several, the JSON reports are printed back to back.
  const output = await runCli("@redocly/cli/bin/cli.js", ["lint", "--config", join(root, "redocly.yaml"), "--format=json", join(dir, file)]);
  return redoclyProblems(file, parseReport("redocly", output));
}

async function spectral(dir: string, files: string[]): Promise<LintProblem[]> {
  const output = await runCli("@stoplight/spectral-cli/dist/index.js", [
    "lint",
    "--ruleset",
    join(root, ".spectral.yaml"),
    "--format",
    "json",
    "--quiet",
    ...files.map((file) => join(dir, file)),
  ]);
  return spectralProblems(parseReport("spectral", output));
}

/** Writes the documents to `dir` (a new temporary directory by default) and lints them with both linters. */
export async function lintOpenApiDocuments(options: { dir?: string } = {}): Promise<LintReport> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "enclave-openapi-"));
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const { service, document } of await openApiDocuments()) {
    const file = `${service}.openapi.json`;
    writeFileSync(join(dir, file), `${JSON.stringify(document, null, 2)}\n`);
    files.push(file);
  }
  const reports = await Promise.all([...files.map((file) => redocly(dir, file)), spectral(dir, files)]);
  return { dir, files, problems: reports.flat() };
}

const count = (problems: LintProblem[], severity: Severity) => problems.filter((problem) => problem.severity === severity).length;

/** One line per linter and document with its counts, then every problem. */
export function formatReport(report: LintReport): string {
  const lines: string[] = [];
  for (const linter of ["redocly", "spectral"] as const) {
    const ofLinter = report.problems.filter((problem) => problem.linter === linter);
    lines.push(`${linter}: ${count(ofLinter, "error")} errors, ${count(ofLinter, "warning")} warnings`);
    for (const file of report.files) {
      const ofFile = ofLinter.filter((problem) => problem.file === file);
      lines.push(`  ${file}: ${count(ofFile, "error")} errors, ${count(ofFile, "warning")} warnings`);
    }
  }
  for (const problem of report.problems) {
    lines.push(`${problem.severity} ${problem.linter} ${problem.rule} ${problem.file} ${problem.where}: ${problem.message}`);
  }
  return `${lines.join("\n")}\n`;
}

async function main(args: string[]) {
  const outIndex = args.indexOf("--out");
  const out = outIndex >= 0 ? args[outIndex + 1] : undefined;
  if (outIndex >= 0 && !out) throw new Error("--out needs a directory");
  const report = await lintOpenApiDocuments(out ? { dir: resolve(out) } : {});
  process.stdout.write(formatReport(report));
  const failed = failing(report.problems).length > 0;
  if (out || failed) process.stdout.write(`documents: ${relative(process.cwd(), report.dir) || "."}\n`);
  else rmSync(report.dir, { recursive: true, force: true });
  process.stdout.write(failed ? "docs:lint FAILED: the linters report errors or warnings\n" : "docs:lint ok\n");
  return failed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`docs:lint failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(2);
    },
  );
}
