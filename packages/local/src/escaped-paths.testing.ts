/**
 * Requests whose paths carry escapes, with the answers a deployed function gives them: API Gateway
 * hands the function the path decoded, so an encoded slash is a separator there and a double
 * escape loses a level. The local runtime and the stage twin must both answer exactly these.
 */
import { expect } from "vitest";
import { call } from "./faults.testing";

interface EscapedPathCase {
  method: string;
  path: string;
  body?: unknown;
  status: number;
  code?: string;
  key?: string;
}

export const escapedPathCases: EscapedPathCase[] = [
  // `a%2Fb` is `a/b` behind the gateway: no route has that many segments.
  { method: "PUT", path: "/admin/config/a%2Fb", body: { value: 1 }, status: 404, code: "not_found" },
  { method: "GET", path: "/admin/config/a%2Fb", status: 404, code: "not_found" },
  { method: "GET", path: "/payments/x%2Fy", status: 404, code: "not_found" },
  // An escaped `?` stays part of the segment: a malformed id, not a query.
  { method: "GET", path: "/payments/%3F", status: 400, code: "validation_failed" },
  // `%252D` reaches the function as `%2D`, which the route reads as `-`.
  { method: "PUT", path: "/admin/config/escaped%252Dkey", body: { value: "v" }, status: 200, key: "escaped-key" },
  { method: "DELETE", path: "/admin/config/escaped-key", status: 204 },
];

/** Sends every case as the development administrator and checks each answer. */
export async function expectEscapedPathsAnswerAsDeployed(base: string): Promise<void> {
  const login = await call(base, "POST", "/auth/login", { body: { email: "admin@enclave.dev", password: "enclave-admin-dev" } });
  expect(login?.status).toBe(200);
  const answers = [];
  for (const { method, path, body } of escapedPathCases) {
    const answer = await call(base, method, path, { token: login!.body.accessToken, ...(body === undefined ? {} : { body }) });
    answers.push({ method, path, status: answer?.status, code: answer?.body?.error?.code, key: answer?.body?.key });
  }
  expect(answers).toEqual(escapedPathCases.map(({ method, path, status, code, key }) => ({ method, path, status, code, key })));
}
