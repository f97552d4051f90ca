import { createServiceApp, Email, eventMetadataOf, Uuid, userOf } from "@enclave/core";
import * as z from "zod/mini";
import type { AuthContext } from "./context";
import { authManifest } from "./manifest";
import { sourceAddress } from "./source-address";
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

const UserEnvelope = z.object({ user: UserInfo }).register(z.globalRegistry, { id: "UserResponse" });
const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).register(z.globalRegistry, {
  id: "Jwks",
  description: "The public keys (JWK) that verify access tokens; select one by the token's `kid`.",
});
const UserId = z.object({ id: Uuid });

const description =
  "Accounts and sessions: registration, sign-in, refresh-token rotation, the signed-in user, user look-ups for administrators and other services, and the public keys every service verifies access tokens with.";

export function createAuthApp(ctx: AuthContext) {
  const { app, routes } = createServiceApp({
    name: "auth",
    prefix: authManifest.prefix,
    version: "1",
    database: ctx.database,
    verifier: ctx.verifier,
    docs: { description },
  });

  routes
    .add(
      {
        method: "post",
        path: "/register",
        operationId: "registerUser",
        summary: "Create an account (role CUSTOMER)",
        description:
          "Creates a CUSTOMER account and signs it in: the answer carries the user, an access token and a refresh token. Publishes `user.registered`, from which the profile service creates the user's profile.",
        access: "public",
        body: RegisterInput,
        responses: {
          201: { description: "Registered and signed in", schema: AuthResult },
          409: { description: "`conflict`: an account with this email exists (emails compare case-insensitively)" },
        },
      },
      async (c, { body }) => c.json(await registerUser(ctx, body, eventMetadataOf(c)), 201),
    )
    .add(
      {
        method: "post",
        path: "/login",
        operationId: "login",
        summary: "Sign in with email and password",
        description:
          "Checks the credentials and starts a session. A wrong email and a wrong password get the same answer, in about the same time; repeated failures for one email, or from one network address, lock sign-in for a while (429 with `Retry-After`).",
        access: "public",
        body: LoginInput,
        responses: {
          200: { description: "Signed in", schema: AuthResult },
          401: { description: "`unauthorized`: wrong email or password" },
          429: {
            description: "`rate_limited`: too many failed sign-ins for this email or from this address; retry after `Retry-After` seconds",
            headers: { "Retry-After": { description: "Seconds until sign-in is allowed again.", schema: z.string().check(z.regex(/^[0-9]+$/)) } },
          },
        },
      },
      async (c, { body }) => c.json(await login(ctx, body, { address: sourceAddress(c, ctx.forwardedForHops) })),
    )
    .add(
      {
        method: "post",
        path: "/refresh",
        operationId: "refreshSession",
        summary: "Rotate a refresh token",
        description:
          "Exchanges a refresh token for a new access token and a new refresh token; the one presented stops working. Presenting a refresh token that was already used ends the whole session (it may have leaked): sign in again.",
        access: "public",
        body: RefreshInput,
        responses: {
          200: { description: "New tokens", schema: TokenPair },
          401: { description: "`unauthorized`: the refresh token is invalid, expired or was already used" },
        },
      },
      async (c, { body }) => c.json(await refreshSession(ctx, body.refreshToken)),
    )
    .add(
      {
        method: "post",
        path: "/logout",
        operationId: "logout",
        summary: "End a session",
        description: "Ends the session the refresh token belongs to. An unknown or already ended token is fine: the answer is the same.",
        access: "public",
        body: RefreshInput,
        responses: { 204: { description: "Signed out" } },
      },
      async (c, { body }) => {
        await logout(ctx, body.refreshToken);
        return c.body(null, 204);
      },
    )
    .add(
      {
        method: "get",
        path: "/me",
        operationId: "getMe",
        summary: "The signed-in user",
        description: "The account the access token belongs to.",
        access: "user",
        responses: { 200: { description: "The user", schema: UserEnvelope }, 404: { description: "`not_found`: the account no longer exists" } },
      },
      async (c, { principal }) => c.json({ user: await getUser(ctx, userOf(principal).userId) }),
    )
    .add(
      {
        method: "get",
        path: "/users/:id",
        operationId: "getUser",
        summary: "A user by id",
        description: "Any user's account, for administrators and for other services of the app.",
        access: { roles: ["ADMIN"], service: true },
        params: UserId,
        responses: { 200: { description: "The user", schema: UserEnvelope }, 404: { description: "`not_found`: no such user" } },
      },
      async (c, { params }) => c.json({ user: await getUser(ctx, params.id) }),
    )
    .add(
      {
        method: "get",
        path: "/users",
        operationId: "findUserByEmail",
        summary: "A user by email",
        description: "The account with this email (compared case-insensitively), for administrators and for other services of the app.",
        access: { roles: ["ADMIN"], service: true },
        query: z.object({ email: Email }),
        responses: { 200: { description: "The user", schema: UserEnvelope }, 404: { description: "`not_found`: no user has this email" } },
      },
      async (c, { query }) => c.json({ user: await findUserByEmail(ctx, query.email) }),
    )
    .add(
      {
        method: "patch",
        path: "/users/:id/role",
        operationId: "changeUserRole",
        summary: "Change a user's role",
        description:
          "Sets the user's role and publishes `user.role_changed` (nothing, when the role is already that one). Access tokens issued before keep their role until they expire.",
        access: { roles: ["ADMIN"] },
        params: UserId,
        body: RoleInput,
        responses: {
          200: { description: "The user", schema: UserEnvelope },
          404: { description: "`not_found`: no such user" },
          409: { description: "`conflict`: another administrator changed the role at the same time; retry" },
        },
      },
      async (c, { params, body }) => c.json({ user: await changeRole(ctx, params.id, body.role, eventMetadataOf(c)) }),
    )
    .add(
      {
        method: "get",
        path: "/.well-known/jwks.json",
        operationId: "getJwks",
        summary: "Public keys that verify access tokens",
        description:
          "The JSON Web Key Set every service verifies access tokens with. Cacheable for five minutes. While the signing key is rotated it holds two keys: select one by the token's `kid`, and fetch the set again when a token names a key you do not have.",
        access: "public",
        database: false,
        responses: { 200: { description: "JWKS", schema: Jwks } },
      },
      async (c) => {
        c.header("cache-control", "public, max-age=300");
        return c.json({ keys: [ctx.publicJwk, ...(ctx.morePublicJwks ?? [])] });
      },
    );
  return app;
}
