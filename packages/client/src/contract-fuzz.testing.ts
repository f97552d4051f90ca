/**
 * What every answer of the API must be, whatever was asked (API.md's conventions, checked against
 * each operation's own OpenAPI description): a status the operation documents, never a 5xx; an
 * error in the `{"error": {code, message, details?}}` shape with a code API.md maps to that status
 * and the document lists for the operation; a success body that matches the documented schema;
 * and nothing internal (stack frames, SQL, driver messages, table or column names, file paths).
 */
import { type JsonSchema, type OpenApiDocument, resolve, schemaProblems } from "./schema-fuzz.testing";

/**
 * API.md: each error code and the one status it always comes with. Written out here, not taken
 * from core/errors.ts, so the fuzzer also catches a drift of the services' own table.
 */
export const contractErrorStatus: Record<string, number> = {
  validation_failed: 400,
  malformed_json: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

export interface ContractOperation {
  service: string;
  method: string;
  /** The OpenAPI path, e.g. `/payments/{id}`. */
  path: string;
  operationId: string;
  document: OpenApiDocument;
  operation: {
    operationId: string;
    security?: unknown[];
    parameters?: { in: string; name: string; required?: boolean; schema?: JsonSchema }[];
    requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
    responses: Record<string, { content?: Record<string, { schema?: JsonSchema; examples?: Record<string, unknown> }> }>;
  };
}

const methods = ["get", "put", "post", "delete", "patch"];

/** Every operation of every document. */
export function contractOperations(documents: { service: string; document: OpenApiDocument }[]): ContractOperation[] {
  return documents.flatMap(({ service, document }) =>
    Object.entries(document.paths as Record<string, Record<string, ContractOperation["operation"]>>).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => methods.includes(method))
        .map(([method, operation]) => ({ service, method: method.toUpperCase(), path, operationId: operation.operationId, document, operation })),
    ),
  );
}

/** The statuses the operation documents (without `default`). */
export const documentedStatuses = (op: ContractOperation) =>
  Object.keys(op.operation.responses)
    .filter((status) => /^\d{3}$/.test(status))
    .map(Number);

/** The error codes the operation documents for a status (its examples are named by code). */
export function documentedCodes(op: ContractOperation, status: number): string[] {
  const examples = op.operation.responses[String(status)]?.content?.["application/json"]?.examples;
  return Object.keys(examples ?? {});
}

/** The success statuses the operation documents. */
export const successStatuses = (op: ContractOperation) => documentedStatuses(op).filter((status) => status < 300);

/**
 * What must never reach a client: the given internal names (tables, columns), the bookkeeping
 * tables, and the shapes of stack frames, SQL and driver messages.
 */
export function leakPattern(internalNames: string[]): RegExp {
  const names = new Set<string>(["password_hash", "token_hash", "_migrations", "drizzle", "pglite", "postgres", "node_modules", ...internalNames]);
  const escaped = [...names].map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(
    [
      ...escaped.map((name) => `\\b${name}\\b`),
      "\\bat .+\\.(ts|js|mjs):\\d+",
      "\\bat async\\b",
      "/work/|/home/|/var/task/",
      "\\.(ts|mjs):\\d+",
      "\\b(select|insert into|delete from|returning|on conflict)\\b.*\\b(from|values|where|do)\\b",
      'syntax error|violates|duplicate key|relation "|column "|invalid input syntax|ECONNREFUSED|DrizzleQueryError|TypeError|ReferenceError',
    ].join("|"),
    "i",
  );
}

export interface Answer {
  status: number;
  text: string;
  headers: Headers;
}

/**
 * Problems with an answer against the contract, whatever the request was: empty when the answer
 * is one the operation may give.
 */
export function contractProblems(op: ContractOperation, answer: Answer, leaks: RegExp): string[] {
  const problems: string[] = [];
  const { status, text, headers } = answer;
  if (status >= 500) problems.push(`answered ${status}`);
  if (!documentedStatuses(op).includes(status)) problems.push(`status ${status} is not documented (${documentedStatuses(op).join(", ")})`);
  if (!headers.get("x-request-id")) problems.push("no x-request-id");
  if (status === 204) {
    if (text !== "") problems.push(`204 with a body: ${text.slice(0, 100)}`);
    return problems;
  }
  if (!/^application\/json/.test(headers.get("content-type") ?? "")) problems.push(`content-type ${headers.get("content-type")}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    problems.push(`body is not JSON: ${text.slice(0, 200)}`);
    return problems;
  }
  if (status >= 400) {
    const error = (body as { error?: Record<string, unknown> }).error;
    if (!error || Object.keys(body as object).join() !== "error") problems.push(`not the error shape: ${text.slice(0, 200)}`);
    else {
      const code = String(error.code);
      if (contractErrorStatus[code] !== status) problems.push(`code ${code} with status ${status} (API.md maps it to ${contractErrorStatus[code]})`);
      const listed = documentedCodes(op, status);
      if (listed.length > 0 && !listed.includes(code)) problems.push(`code ${code} is not documented for ${status} (${listed.join(", ")})`);
      if (typeof error.message !== "string" || error.message === "") problems.push("no message");
      const extra = Object.keys(error).filter((key) => !["code", "message", "details"].includes(key));
      if (extra.length > 0) problems.push(`extra error members ${extra.join(", ")}`);
      if (code === "validation_failed" && error.details !== undefined) {
        const details = error.details as { path?: unknown; message?: unknown }[];
        if (!Array.isArray(details) || details.length > 20 || details.some((d) => typeof d.path !== "string" || typeof d.message !== "string"))
          problems.push(`details are not a list of {path, message}: ${JSON.stringify(error.details).slice(0, 200)}`);
      }
    }
    if (leaks.test(text)) problems.push(`leaks internals (${leaks.exec(text)?.[0]}): ${text.slice(0, 300)}`);
  } else {
    const schema = op.operation.responses[String(status)]?.content?.["application/json"]?.schema;
    if (schema) problems.push(...schemaProblems(op.document, schema, body).slice(0, 5));
  }
  return problems;
}

/** The schema of a request body, resolved. */
export const requestBodySchema = (op: ContractOperation): JsonSchema | undefined => {
  const schema = op.operation.requestBody?.content?.["application/json"]?.schema;
  return schema ? resolve(op.document, schema) : undefined;
};
