import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import type { EnclaveClient, Schemas } from "./index";

export interface ApiFlowOptions {
  /** Where the API is served (the client's base URL). */
  baseUrl: string;
  /** An administrator that exists on the stage (the development seed's). */
  admin: { email: string; password: string };
  /** Waits until the events published so far have reached their subscribers. */
  settle(): Promise<void>;
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/**
 * Every route of API.md, through the typed client, as a user of the API would call them: sign-up
 * and sessions, profiles, payments (idempotent create, filters, cancel, history), the admin's
 * views, and the events between services (a profile per new user; the audit log). Written once,
 * run against `npm run dev` and against the stage twin, so both answer the same.
 */
export async function runApiFlow(api: EnclaveClient, options: ApiFlowOptions): Promise<void> {
  const run = randomUUID().slice(0, 8);
  const password = "correct-horse-battery";

  // Sign-up, sign-in, refresh, sign-out.
  const register = async (name: string) => {
    const { data, response } = await api.POST("/auth/register", { body: { email: `${name.toLowerCase()}-${run}@example.com`, password, name } });
    expect(response.status).toBe(201);
    return data as Schemas["AuthResult"];
  };
  const ada = await register("Ada");
  const bob = await register("Bob");
  const duplicate = await api.POST("/auth/register", { body: { email: ada.user.email.toUpperCase(), password, name: "Ada" } });
  expect(duplicate.response.status).toBe(409);
  expect(duplicate.error?.error.code).toBe("conflict");

  const me = await api.GET("/auth/me", bearer(ada.accessToken));
  expect(me.data?.user).toMatchObject({ id: ada.user.id, email: ada.user.email, role: "CUSTOMER" });
  expect((await api.GET("/auth/me", bearer("not-a-token"))).response.status).toBe(401);

  const login = await api.POST("/auth/login", { body: { email: ada.user.email, password } });
  expect(login.response.status).toBe(200);
  const wrong = await api.POST("/auth/login", { body: { email: ada.user.email, password: "not-the-password" } });
  expect(wrong.response.status).toBe(401);

  const refreshed = await api.POST("/auth/refresh", { body: { refreshToken: login.data!.refreshToken } });
  expect(refreshed.response.status).toBe(200);
  expect(refreshed.data?.refreshToken).not.toBe(login.data!.refreshToken);
  const loggedOut = await api.POST("/auth/logout", { body: { refreshToken: refreshed.data!.refreshToken } });
  expect(loggedOut.response.status).toBe(204);
  expect((await api.POST("/auth/refresh", { body: { refreshToken: refreshed.data!.refreshToken } })).response.status).toBe(401);

  const jwks = await api.GET("/auth/.well-known/jwks.json");
  expect(jwks.data?.keys.length).toBeGreaterThan(0);
  expect(JSON.stringify(jwks.data)).not.toContain('"d"');

  // The administrator's views of users.
  const signedIn = await api.POST("/auth/login", { body: options.admin });
  expect(signedIn.response.status).toBe(200);
  const admin = signedIn.data!.accessToken;
  const byId = await api.GET("/auth/users/{id}", { params: { path: { id: bob.user.id } }, ...bearer(admin) });
  expect(byId.data?.user.email).toBe(bob.user.email);
  const byEmail = await api.GET("/auth/users", { params: { query: { email: bob.user.email.toUpperCase() } }, ...bearer(admin) });
  expect(byEmail.data?.user.id).toBe(bob.user.id);
  expect((await api.GET("/auth/users/{id}", { params: { path: { id: bob.user.id } }, ...bearer(ada.accessToken) })).response.status).toBe(403);

  // Profiles: the default one arrives by event (user.registered); the owner edits it.
  await options.settle();
  const profile = await api.GET("/profiles/me", bearer(ada.accessToken));
  expect(profile.data?.profile.userId).toBe(ada.user.id);
  const patched = await api.PATCH("/profiles/me", { body: { bio: "Analyst of engines" }, ...bearer(ada.accessToken) });
  expect(patched.data?.profile.bio).toBe("Analyst of engines");
  const byAdmin = await api.GET("/profiles/{userId}", { params: { path: { userId: ada.user.id } }, ...bearer(admin) });
  expect(byAdmin.data?.profile.bio).toBe("Analyst of engines");
  const byOther = await api.GET("/profiles/{userId}", { params: { path: { userId: ada.user.id } }, ...bearer(bob.accessToken) });
  expect(byOther.response.status).toBe(403);

  // Payments: idempotent create, replay, read, filters, history, cancel.
  const pay = (key: string, body: Schemas["CreatePaymentRequest"]) =>
    api.POST("/payments", { body, params: { header: { "Idempotency-Key": key } }, ...bearer(ada.accessToken) });
  const created = await pay(`pay-${run}`, { recipientEmail: bob.user.email, amount: "12.50", currency: "USD" });
  expect(created.response.status).toBe(201);
  const payment = created.data!.payment;
  expect(payment).toMatchObject({ senderId: ada.user.id, recipientId: bob.user.id, amount: "12.50", status: "pending" });
  const replay = await pay(`pay-${run}`, { recipientEmail: bob.user.email, amount: "12.5", currency: "USD" });
  expect(replay.response.headers.get("idempotent-replayed")).toBe("true");
  expect(replay.data?.payment.id).toBe(payment.id);
  const conflict = await pay(`pay-${run}`, { recipientEmail: bob.user.email, amount: "13.00", currency: "USD" });
  expect(conflict.response.status).toBe(409);

  const later = new Date(Date.now() + 86_400_000).toISOString();
  const scheduled = await pay(`later-${run}`, { recipientEmail: bob.user.email, amount: "3.00", currency: "USD", type: "scheduled", scheduledFor: later });
  expect(scheduled.data?.payment.status).toBe("pending");
  const cancelled = await api.POST("/payments/{id}/cancel", { params: { path: { id: scheduled.data!.payment.id } }, ...bearer(ada.accessToken) });
  expect(cancelled.data?.payment.status).toBe("cancelled");
  const byRecipient = await api.POST("/payments/{id}/cancel", { params: { path: { id: payment.id } }, ...bearer(bob.accessToken) });
  expect([403, 409]).toContain(byRecipient.response.status);

  await options.settle();
  const read = await api.GET("/payments/{id}", { params: { path: { id: payment.id } }, ...bearer(bob.accessToken) });
  expect(read.data?.payment.status).toBe("completed");
  const history = await api.GET("/payments/{id}/transactions", { params: { path: { id: payment.id } }, ...bearer(ada.accessToken) });
  expect(history.data?.items.map((t) => t.status)).toEqual(["pending", "processing", "completed"]);
  const sent = await api.GET("/payments", { params: { query: { role: "sender", status: "cancelled" } }, ...bearer(ada.accessToken) });
  expect(sent.data?.items.map((p) => p.id)).toEqual([scheduled.data!.payment.id]);
  const received = await api.GET("/payments", { params: { query: { role: "recipient", limit: 1 } }, ...bearer(bob.accessToken) });
  expect(received.data?.items).toHaveLength(1);
  expect(received.data?.nextCursor).not.toBeNull();
  const next = await api.GET("/payments", {
    params: { query: { role: "recipient", limit: 1, cursor: received.data!.nextCursor! } },
    ...bearer(bob.accessToken),
  });
  expect(next.data?.items.map((p) => p.id)).not.toContain(received.data?.items[0]?.id);
  const stranger = await register("Eve");
  expect((await api.GET("/payments/{id}", { params: { path: { id: payment.id } }, ...bearer(stranger.accessToken) })).response.status).toBe(404);

  // The audit log holds every event the flow caused, once.
  await options.settle();
  const audit = await api.GET("/admin/audit-logs", { params: { query: { userId: ada.user.id, limit: 100 } }, ...bearer(admin) });
  const actions = (audit.data?.items ?? []).map((row) => row.action);
  expect(actions).toEqual(expect.arrayContaining(["user.registered", "profile.created", "profile.updated", "payment.created", "payment.cancelled"]));
  expect((await api.GET("/admin/audit-logs", bearer(ada.accessToken))).response.status).toBe(403);
  const config = await api.GET("/admin/config", bearer(admin));
  expect(config.data?.items.map((item) => item.key)).toContain("maintenance.enabled");

  // Each service describes itself.
  for (const prefix of ["/auth", "/profiles", "/payments", "/admin"] as const) {
    const health = await fetch(new URL(`${prefix}/health`, options.baseUrl));
    expect(health.status, prefix).toBe(200);
  }
}
