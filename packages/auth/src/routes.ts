import { createServiceApp, Email, eventMetadataOf, Uuid, userOf } from "@enclave/core";
import * as z from "zod/mini";
import type { AuthContext } from "./context";
import { authManifest } from "./manifest";
import {
  AuthResult,
  changeRole,
  findUserByEmail,
  getUser,
  LoginInput,
  login,
  logout,
  RefreshInput,
  RegisterInput,
  RoleInput,
  refreshSession,
  registerUser,
  TokenPair,
  UserInfo,
} from "./user";

const UserEnvelope = z.object({ user: UserInfo });
const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

export function createAuthApp(ctx: AuthContext) {
  const { app, routes } = createServiceApp({ name: "auth", prefix: authManifest.prefix, version: "1", database: ctx.database, verifier: ctx.verifier });

  routes
    .add(
      {
        method: "post",
        path: "/register",
        summary: "Create an account (role CUSTOMER)",
        access: "public",
        body: RegisterInput,
        responses: { 201: { description: "Registered", schema: AuthResult }, 409: { description: "The email exists" } },
      },
      async (c, { body }) => c.json(await registerUser(ctx, body, eventMetadataOf(c)), 201),
    )
    .add(
      {
        method: "post",
        path: "/login",
        summary: "Sign in with email and password",
        access: "public",
        body: LoginInput,
        responses: {
          200: { description: "Signed in", schema: AuthResult },
          401: { description: "Wrong email or password" },
          429: { description: "Too many failures; see Retry-After" },
        },
      },
      async (c, { body }) => c.json(await login(ctx, body)),
    )
    .add(
      {
        method: "post",
        path: "/refresh",
        summary: "Rotate a refresh token",
        access: "public",
        body: RefreshInput,
        responses: { 200: { description: "New tokens", schema: TokenPair }, 401: { description: "Invalid, expired or reused token" } },
      },
      async (c, { body }) => c.json(await refreshSession(ctx, body.refreshToken)),
    )
    .add(
      { method: "post", path: "/logout", summary: "End a session", access: "public", body: RefreshInput, responses: { 204: { description: "Signed out" } } },
      async (c, { body }) => {
        await logout(ctx, body.refreshToken);
        return c.body(null, 204);
      },
    )
    .add(
      { method: "get", path: "/me", summary: "The signed-in user", access: "user", responses: { 200: { description: "The user", schema: UserEnvelope } } },
      async (c, { principal }) => c.json({ user: await getUser(ctx, userOf(principal).userId) }),
    )
    .add(
      {
        method: "get",
        path: "/users/:id",
        summary: "A user by id",
        access: { roles: ["ADMIN"], service: true },
        params: z.object({ id: Uuid }),
        responses: { 200: { description: "The user", schema: UserEnvelope }, 404: { description: "No such user" } },
      },
      async (c, { params }) => c.json({ user: await getUser(ctx, params.id) }),
    )
    .add(
      {
        method: "get",
        path: "/users",
        summary: "A user by email",
        access: { roles: ["ADMIN"], service: true },
        query: z.object({ email: Email }),
        responses: { 200: { description: "The user", schema: UserEnvelope }, 404: { description: "No user has this email" } },
      },
      async (c, { query }) => c.json({ user: await findUserByEmail(ctx, query.email) }),
    )
    .add(
      {
        method: "patch",
        path: "/users/:id/role",
        summary: "Change a user's role",
        access: { roles: ["ADMIN"] },
        params: z.object({ id: Uuid }),
        body: RoleInput,
        responses: { 200: { description: "The user", schema: UserEnvelope }, 404: { description: "No such user" } },
      },
      async (c, { params, body }) => c.json({ user: await changeRole(ctx, params.id, body.role, eventMetadataOf(c)) }),
    )
    .add(
      {
        method: "get",
        path: "/.well-known/jwks.json",
        summary: "Public keys that verify access tokens",
        access: "public",
        responses: { 200: { description: "JWKS", schema: Jwks } },
      },
      async (c) => {
        c.header("cache-control", "public, max-age=300");
        return c.json({ keys: [ctx.publicJwk] });
      },
    );
  return app;
}
