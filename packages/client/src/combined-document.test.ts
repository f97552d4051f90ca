import { openApiDocuments } from "@enclave/local/openapi-documents";
import { expect, test } from "vitest";
import { generateClientSources } from "../generate";

type Operation = { operationId?: string; security?: unknown[] };
const operationsOf = (document: { paths?: Record<string, Record<string, unknown>>; security?: unknown[] }) =>
  Object.values(document.paths ?? {}).flatMap((item) =>
    Object.values(item)
      .filter((value): value is Operation => typeof (value as Operation)?.operationId === "string")
      .map((operation) => ({ id: operation.operationId as string, security: operation.security ?? document.security ?? [] })),
  );

test("the combined document keeps every operation and its security as its service declares them", async () => {
  const combined = JSON.parse((await generateClientSources()).document);
  const expected = (await openApiDocuments()).flatMap(({ document }) => operationsOf(document as never));
  const actual = operationsOf(combined);
  expect(actual.map((o) => o.id).sort()).toEqual(expected.map((o) => o.id).sort());
  for (const operation of expected) expect(actual.find((o) => o.id === operation.id)?.security, operation.id).toEqual(operation.security);
  expect(actual.filter((o) => o.security.length > 0).length).toBeGreaterThan(0);
}, 60_000);
