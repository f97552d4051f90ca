import { importSigningKey, signAccessToken } from "@enclave/core/http/access-token";
import { generatePrivateJwk } from "@enclave/core/keys";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { adminOutbox, auditLogsTable, systemConfigTable } from "./admin.sql";
import { type AdminHarness, call, createAdminHarness } from "./testing";

let h: AdminHarness;
beforeAll(async () => {
  h = await createAdminHarness();
});
afterAll(() => h?.dispose());

const routes: [string, string, unknown][] = [
  ["GET", "/admin/audit-logs", undefined],
  ["GET", "/admin/config", undefined],
  ["GET", "/admin/config/maintenance.enabled", undefined],
  ["PUT", "/admin/config/maintenance.enabled", { value: true }],
  ["DELETE", "/admin/config/maintenance.enabled", undefined],
];

async function nothingWritten() {
  expect(await h.database.db.select().from(systemConfigTable)).toHaveLength(0);
  expect(await h.database.db.select().from(auditLogsTable)).toHaveLength(0);
  expect(await h.database.db.select().from(adminOutbox)).toHaveLength(0);
  expect(h.bus.entries).toHaveLength(0);
}

describe.each(routes)("%s %s is for admins only", (method, path, body) => {
  test("401 without a token", async () => {
    const res = await call(h.app, method, path, body);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
    await nothingWritten();
  });

  test("401 with a malformed Authorization header or a token that is not a JWT", async () => {
    for (const authorization of ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer not.a.jwt"]) {
      const res = await call(h.app, method, path, body, undefined, { authorization });
      expect(res.status, authorization).toBe(401);
      expect(res.body.error.code).toBe("unauthorized");
    }
  });

  test("401 with an admin token signed by another key", async () => {
    const foreign = await importSigningKey(generatePrivateJwk());
    const token = await signAccessToken(
      foreign,
      { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 },
      { id: crypto.randomUUID(), role: "ADMIN" },
    );
    const res = await call(h.app, method, path, body, token);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("unauthorized");
  });

  test.each(["CUSTOMER", "VENDOR"] as const)("403 for a %s", async (role) => {
    const res = await call(h.app, method, path, body, await h.token(role));
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: { code: "forbidden", message: expect.any(String) } });
    await nothingWritten();
  });

  test("authorization is checked before input: a non-admin with bad input still gets 403", async () => {
    const res = await call(
      h.app,
      method,
      `${path.replace("maintenance.enabled", "BAD KEY")}?limit=0`,
      body === undefined ? undefined : {},
      await h.token("CUSTOMER"),
    );
    expect(res.status).toBe(403);
  });
});

test("health and the OpenAPI document are public", async () => {
  const health = await call(h.app, "GET", "/admin/health");
  expect(health.status).toBe(200);
  expect(health.body).toMatchObject({ service: "admin", status: "ok", database: { status: "ok" } });
  const openapi = await call(h.app, "GET", "/admin/openapi.json");
  expect(openapi.status).toBe(200);
  expect(Object.keys(openapi.body.paths).sort()).toEqual(["/admin/audit-logs", "/admin/config", "/admin/config/{key}", "/admin/health"]);
  expect(Object.keys(openapi.body.paths["/admin/config/{key}"]).sort()).toEqual(["delete", "get", "put"]);
});
