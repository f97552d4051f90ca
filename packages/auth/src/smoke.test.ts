import { afterAll, beforeAll, expect, test } from "vitest";
import { type AuthHarness, call, createAuthHarness } from "./testing";

let h: AuthHarness;
beforeAll(async () => {
  h = await createAuthHarness();
});
afterAll(() => h?.dispose());

test("register then login", async () => {
  const reg = await call(h.app, "POST", "/auth/register", { email: "A@x.io", password: "password123", name: "A" });
  expect(reg.status, JSON.stringify(reg.body)).toBe(201);
  const login = await call(h.app, "POST", "/auth/login", { email: "a@x.io", password: "password123" });
  expect(login.status, JSON.stringify(login.body)).toBe(200);
  const me = await call(h.app, "GET", "/auth/me", undefined, login.body.accessToken);
  expect(me.body.user.email).toBe("A@x.io");
  expect(h.bus.entries.map((e) => e.detailType)).toEqual(["user.registered"]);
  const ref = await call(h.app, "POST", "/auth/refresh", { refreshToken: login.body.refreshToken });
  expect(ref.status, JSON.stringify(ref.body)).toBe(200);
  const reuse = await call(h.app, "POST", "/auth/refresh", { refreshToken: login.body.refreshToken });
  expect(reuse.status).toBe(401);
  const after = await call(h.app, "POST", "/auth/refresh", { refreshToken: ref.body.refreshToken });
  expect(after.status).toBe(401);
});
