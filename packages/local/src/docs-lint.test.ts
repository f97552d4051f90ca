import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { failing, formatReport, type LintProblem, lintOpenApiDocuments, redoclyProblems, spectralProblems } from "./docs-lint";

describe("reading the linters' reports", () => {
  test("Redocly: each problem with its rule, severity and JSON pointer", () => {
    const report = {
      totals: { errors: 1, warnings: 1, ignored: 0 },
      problems: [
        { ruleId: "struct", severity: "error", message: "Expected type `string`.", location: [{ pointer: "#/info/title" }] },
        { ruleId: "info-license", severity: "warn", message: "Info object should contain `license` field.", location: [{ pointer: "#/info" }] },
      ],
    };
    expect(redoclyProblems("auth.openapi.json", report)).toEqual([
      { linter: "redocly", file: "auth.openapi.json", severity: "error", rule: "struct", message: "Expected type `string`.", where: "#/info/title" },
      {
        linter: "redocly",
        file: "auth.openapi.json",
        severity: "warning",
        rule: "info-license",
        message: "Info object should contain `license` field.",
        where: "#/info",
      },
    ]);
    expect(redoclyProblems("auth.openapi.json", { totals: { errors: 0, warnings: 0 }, problems: [] })).toEqual([]);
  });

  test("Spectral: severities 0 to 3, the file from the source path", () => {
    const report = [
      { code: "oas3-schema", severity: 0, message: "bad", path: ["paths", "/a", "get"], source: "/tmp/x/payments.openapi.json" },
      { code: "operation-description", severity: 1, message: "missing", path: ["paths", "/a", "get"], source: "/tmp/x/payments.openapi.json" },
      { code: "some-info", severity: 2, message: "fyi", path: [], source: "/tmp/x/admin.openapi.json" },
    ];
    const problems = spectralProblems(report);
    expect(problems.map((p) => [p.file, p.severity, p.rule, p.where])).toEqual([
      ["payments.openapi.json", "error", "oas3-schema", "paths./a.get"],
      ["payments.openapi.json", "warning", "operation-description", "paths./a.get"],
      ["admin.openapi.json", "info", "some-info", ""],
    ]);
    // Information does not fail the run; errors and warnings do.
    expect(failing(problems).map((p) => p.rule)).toEqual(["oas3-schema", "operation-description"]);
  });

  test("the summary counts errors and warnings per linter and document", () => {
    const problem = (linter: LintProblem["linter"], severity: LintProblem["severity"]): LintProblem => ({
      linter,
      file: "auth.openapi.json",
      severity,
      rule: "r",
      message: "m",
      where: "w",
    });
    const text = formatReport({
      dir: "/tmp/x",
      files: ["auth.openapi.json", "admin.openapi.json"],
      problems: [problem("redocly", "warning"), problem("spectral", "error"), problem("spectral", "warning")],
    });
    expect(text).toContain("redocly: 0 errors, 1 warnings\n  auth.openapi.json: 0 errors, 1 warnings\n  admin.openapi.json: 0 errors, 0 warnings");
    expect(text).toContain("spectral: 1 errors, 1 warnings");
  });
});

test("every service's document passes Redocly and Spectral without an error or a warning", { timeout: 120_000 }, async () => {
  const report = await lintOpenApiDocuments();
  try {
    expect(report.files.sort()).toEqual(["admin.openapi.json", "auth.openapi.json", "payments.openapi.json", "profile.openapi.json"]);
    expect(JSON.parse(readFileSync(join(report.dir, "payments.openapi.json"), "utf8")).openapi).toBe("3.1.0");
    expect(failing(report.problems), formatReport(report)).toEqual([]);
  } finally {
    rmSync(report.dir, { recursive: true, force: true });
  }
});
