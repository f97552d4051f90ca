import type { UserInfo } from "@enclave/auth/user";
import { createServiceTokenSigner } from "@enclave/core/http/service-token";
import { exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, expectTypeOf, test } from "vitest";
import { createAuthClient, type DirectoryUser, type Fetch } from "./auth-client";

const user: DirectoryUser = { id: "01a1fde6-d43c-7fcc-8c2c-04cf97b9f671", email: "Bob@Example.com", name: "Bob", role: "CUSTOMER" };
const ok = () => new Response(JSON.stringify({ user: { ...user, emailVerified: true, createdAt: "x", updatedAt: "x" } }), { status: 200 });
const status = (code: number) => () => new Response(JSON.stringify({ error: { code: "x", message: "x" } }), { status: code });

let signer: ReturnType<typeof createServiceTokenSigner>;
beforeAll(async () => {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  signer = createServiceTokenSigner({ service: "payments", privateJwk: await exportJWK(privateKey) });
});

function client(answers: (() => Response | Promise<Response>)[], options: { now?: () => number; timeoutMs?: number } = {}) {
  const requests: Request[] = [];
  const fetch: Fetch = async (request) => {
    requests.push(request);
    const answer = answers[Math.min(requests.length - 1, answers.length - 1)];
    return answer ? answer() : new Response(null, { status: 500 });
  };
  return {
    requests,
    users: createAuthClient({
      baseUrl: "https://api.example.com/",
      signer,
      fetch,
      retryDelayMs: 1,
      // Generous: minting the first service token imports a key, which a busy machine makes slow.
      timeoutMs: options.timeoutMs ?? 2_000,
      ...(options.now ? { now: options.now } : {}),
    }),
  };
}

describe("auth client", () => {
  test("its user type is what auth's user carries", () => {
    expectTypeOf<Pick<UserInfo, "id" | "email" | "name" | "role">>().toEqualTypeOf<DirectoryUser>();
  });

  test("calls auth's route with a service token and the request id", async () => {
    const { requests, users } = client([ok]);
    expect(await users.findByEmail("bob@example.com", { requestId: "r-1" })).toEqual(user);
    const [request] = requests;
    expect(request?.url).toBe("https://api.example.com/auth/users?email=bob%40example.com");
    expect(request?.headers.get("x-request-id")).toBe("r-1");
    const token = request?.headers.get("authorization")?.replace("Bearer ", "") ?? "";
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    expect(claims).toMatchObject({ iss: "service:payments", sub: "payments", aud: "auth" });
  });

  test("404 is no user, and is not cached", async () => {
    const { requests, users } = client([status(404), ok]);
    expect(await users.findByEmail("bob@example.com")).toBeNull();
    expect(await users.findByEmail("bob@example.com")).toEqual(user);
    expect(requests).toHaveLength(2);
  });

  test("found users are cached for 5 minutes, by email (any case)", async () => {
    let now = 1_000_000;
    const { requests, users } = client([ok], { now: () => now });
    await users.findByEmail("bob@example.com");
    await users.findByEmail("BOB@example.com");
    expect(await users.findByEmail("Bob@Example.com")).toEqual(user);
    expect(requests).toHaveLength(1);
    now += 5 * 60_000 - 1;
    await users.findByEmail("bob@example.com");
    expect(requests).toHaveLength(1);
    now += 2;
    await users.findByEmail("bob@example.com");
    expect(requests).toHaveLength(2);
  });

  test("one retry on 5xx, then 503 unavailable", async () => {
    const once = client([status(502), ok]);
    expect(await once.users.findByEmail("bob@example.com")).toEqual(user);
    expect(once.requests).toHaveLength(2);
    const down = client([status(503)]);
    await expect(down.users.findByEmail("bob@example.com")).rejects.toMatchObject({ code: "unavailable", status: 503 });
    expect(down.requests).toHaveLength(2);
  });

  test("one retry on network errors and timeouts", async () => {
    const refused = client([
      () => {
        throw new TypeError("fetch failed");
      },
    ]);
    await expect(refused.users.findByEmail("bob@example.com")).rejects.toMatchObject({ code: "unavailable" });
    expect(refused.requests).toHaveLength(2);
    const hanging = client([() => new Promise<Response>(() => {})], { timeoutMs: 20 });
    await expect(hanging.users.findByEmail("bob@example.com")).rejects.toMatchObject({ code: "unavailable" });
    expect(hanging.requests).toHaveLength(2);
    expect(hanging.requests.every((r) => r.signal.aborted)).toBe(true);
  });

  test("a token that takes longer to mint than the timeout is unavailable, and never an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", record);
    try {
      const slowSigner = { service: "payments", mint: () => new Promise<string>((resolve) => setTimeout(() => resolve("token"), 60)) };
      const requests: Request[] = [];
      const users = createAuthClient({
        baseUrl: "https://api.example.com",
        signer: slowSigner,
        fetch: async (request) => {
          requests.push(request);
          return new Response(null, { status: 500 });
        },
        retryDelayMs: 1,
        timeoutMs: 20,
      });
      await expect(users.findByEmail("bob@example.com")).rejects.toMatchObject({ code: "unavailable" });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(requests).toHaveLength(0);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", record);
    }
  });

  test("no retry when auth refuses us (401/403/429) or answers nonsense", async () => {
    for (const code of [401, 403, 429]) {
      const refused = client([status(code)]);
      await expect(refused.users.findByEmail("bob@example.com")).rejects.toMatchObject({ code: "unavailable" });
      expect(refused.requests).toHaveLength(1);
    }
    const nonsense = client([() => new Response(JSON.stringify({ user: { id: "not-a-uuid" } }), { status: 200 })]);
    await expect(nonsense.users.findByEmail("bob@example.com")).rejects.toMatchObject({ code: "unavailable" });
    const html = client([() => new Response("<html>", { status: 200 })]);
    await expect(html.users.findByEmail("bob@example.com")).rejects.toMatchObject({ code: "unavailable" });
  });
});
