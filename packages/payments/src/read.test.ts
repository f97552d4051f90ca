import { rowsOf } from "@enclave/core";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, createPaymentsHarness, type PaymentsHarness, type TestUser } from "./testing";

let h: PaymentsHarness;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let admin: TestUser;
const sent: string[] = [];
const received: string[] = [];
let n = 0;

const pay = async (from: TestUser, to: TestUser, amount: string) => {
  const res = await call(h.app, "POST", "/payments", { recipientEmail: to.email, amount }, from.token, { "idempotency-key": `read-${++n}` });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.payment.id as string;
};

beforeAll(async () => {
  h = await createPaymentsHarness();
  alice = await h.user("Alice");
  bob = await h.user("Bob");
  carol = await h.user("Carol");
  admin = await h.user("Admin", "ADMIN");
  // Alice sends 7 (two above the simulator's limit) and receives 5, interleaved in time.
  for (let i = 0; i < 7; i++) {
    sent.push(await pay(alice, bob, i < 2 ? "20000.00" : `${i + 1}.00`));
    if (i < 5) received.push(await pay(i % 2 ? carol : bob, alice, `${i + 1}.25`));
  }
  await h.deliverCreated(); // every payment settles: 2 failed, the rest completed
});
afterAll(() => h?.dispose());

type Page = { items: { id: string; status: string; senderId: string; recipientId: string; createdAt: string }[]; nextCursor: string | null };

async function all(path: string, token: string, limit: number): Promise<Page["items"]> {
  const items: Page["items"] = [];
  let cursor: string | null = null;
  for (let guard = 0; guard < 50; guard++) {
    const sep = path.includes("?") ? "&" : "?";
    const res = await call(h.app, "GET", `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, undefined, token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const page = res.body as Page;
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    cursor = page.nextCursor;
    if (!cursor) return items;
  }
  throw new Error("pagination did not end");
}

const newestFirst = (ids: string[]) => [...ids].reverse();

describe("GET /payments", () => {
  test("sent and received, newest first, across pages without gaps or repeats", async () => {
    const items = await all("/payments", alice.token, 3);
    const all12 = [...sent, ...received];
    expect(items).toHaveLength(all12.length);
    expect(new Set(items.map((p) => p.id))).toEqual(new Set(all12));
    const times = items.map((p) => `${p.createdAt}|${p.id}`);
    expect(times).toEqual([...times].sort().reverse());
  });

  test("role filter", async () => {
    expect((await all("/payments?role=sender", alice.token, 2)).map((p) => p.id)).toEqual(newestFirst(sent));
    expect((await all("/payments?role=recipient", alice.token, 2)).map((p) => p.id)).toEqual(newestFirst(received));
  });

  test("status filter, alone and with a role", async () => {
    const failed = await all("/payments?status=failed", alice.token, 1);
    expect(failed.map((p) => p.id)).toEqual(newestFirst(sent.slice(0, 2)));
    const completedReceived = await all("/payments?status=completed&role=recipient", alice.token, 2);
    expect(completedReceived.map((p) => p.id)).toEqual(newestFirst(received));
    expect(await all("/payments?status=cancelled", alice.token, 5)).toEqual([]);
  });

  test("default page size and the last page's cursor", async () => {
    const res = await call(h.app, "GET", "/payments", undefined, alice.token);
    expect(res.body.items).toHaveLength(12);
    expect(res.body.nextCursor).toBeNull();
    const exact = await call(h.app, "GET", "/payments?limit=12", undefined, alice.token);
    expect(exact.body.nextCursor).toBeNull();
  });

  test("only the caller's payments", async () => {
    const carols = await all("/payments", carol.token, 10);
    expect(carols.every((p) => p.senderId === carol.id || p.recipientId === carol.id)).toBe(true);
    expect(carols).toHaveLength(2);
    // ADMIN lists their own payments here too (none).
    expect(await all("/payments", admin.token, 10)).toEqual([]);
  });

  test.each([
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=abc", "limit"],
    ["limit=1.5", "limit"],
    ["status=done", "status"],
    ["role=admin", "role"],
    ["cursor=not-a-cursor", "cursor"],
    [`cursor=${Buffer.from(JSON.stringify({ t: "yesterday", id: "x" })).toString("base64url")}`, "cursor"],
  ])("400 for ?%s", async (query, path) => {
    const res = await call(h.app, "GET", `/payments?${query}`, undefined, alice.token);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details[0].path).toBe(path);
  });

  test("401 without a token", async () => {
    expect((await call(h.app, "GET", "/payments")).status).toBe(401);
  });
});

describe("GET /payments/:id and its transactions", () => {
  test("sender, recipient and ADMIN see it; anyone else gets 404", async () => {
    const id = sent[3] as string;
    for (const who of [alice, bob, admin]) {
      const res = await call(h.app, "GET", `/payments/${id}`, undefined, who.token);
      expect(res.status).toBe(200);
      expect(res.body.payment.id).toBe(id);
      const history = await call(h.app, "GET", `/payments/${id}/transactions`, undefined, who.token);
      expect(history.status).toBe(200);
    }
    for (const path of [`/payments/${id}`, `/payments/${id}/transactions`]) {
      const res = await call(h.app, "GET", path, undefined, carol.token);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe("not_found");
    }
  });

  test("history is oldest first with the provider's reference", async () => {
    const completed = await call(h.app, "GET", `/payments/${sent[3]}/transactions`, undefined, alice.token);
    expect(completed.body.items.map((t: { status: string }) => t.status)).toEqual(["pending", "processing", "completed"]);
    expect(completed.body.items[2].pspTransactionId).toMatch(/^sim_/);
    const failed = await call(h.app, "GET", `/payments/${sent[0]}/transactions`, undefined, alice.token);
    expect(failed.body.items.map((t: { status: string; statusMessage: string }) => [t.status, t.statusMessage])).toEqual([
      ["pending", "created"],
      ["processing", "sent to the payment provider"],
      ["failed", "declined: limit_exceeded"],
    ]);
    const payment = await call(h.app, "GET", `/payments/${sent[0]}`, undefined, alice.token);
    expect(payment.body.payment).toMatchObject({ status: "failed", failureReason: "limit_exceeded", amount: "20000.00", completedAt: null });
  });

  test("unknown ids are 404, malformed ids 400", async () => {
    const unknown = "01a1fde6-d43c-7fcc-8c2c-04cf97b9f671";
    expect((await call(h.app, "GET", `/payments/${unknown}`, undefined, alice.token)).status).toBe(404);
    expect((await call(h.app, "GET", `/payments/${unknown}/transactions`, undefined, alice.token)).status).toBe(404);
    for (const path of ["/payments/123", "/payments/123/transactions", "/payments/'%20or%201=1--"]) {
      const res = await call(h.app, "GET", path, undefined, alice.token);
      expect(res.status, path).toBe(400);
      expect(res.body.error.details[0].path).toBe("id");
    }
  });

  test("405 for a method the path does not have", async () => {
    const res = await call(h.app, "DELETE", `/payments/${sent[0]}`, undefined, alice.token);
    expect(res.status).toBe(405);
  });
});

describe("indexes", () => {
  /** The plan with sequential scans disabled: it shows whether an index can serve the query in order. */
  async function plan(query: string): Promise<string> {
    return h.database.db.transaction(async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      const result = await tx.execute(sql.raw(`explain ${query}`));
      return rowsOf<{ "QUERY PLAN": string }>(result)
        .map((row) => row["QUERY PLAN"])
        .join("\n");
    });
  }
  const me = () => alice.id;
  const keyset = `and (created_at, id) < ('2999-01-01T00:00:00Z'::timestamptz, '01a1fde6-d43c-7fcc-8c2c-04cf97b9f671'::uuid)`;

  test("each list is an ordered index scan, with no sort", async () => {
    const cases: [string, string][] = [
      [`select * from payments.payments where sender_id = '${me()}' ${keyset} order by created_at desc, id desc limit 21`, "payments_sender_created_idx"],
      [`select * from payments.payments where recipient_id = '${me()}' ${keyset} order by created_at desc, id desc limit 21`, "payments_recipient_created_idx"],
      [
        `select * from payments.payments where sender_id = '${me()}' and status = 'completed' ${keyset} order by created_at desc, id desc limit 21`,
        "payments_sender_status_created_idx",
      ],
      [
        `select * from payments.payments where recipient_id = '${me()}' and status = 'failed' ${keyset} order by created_at desc, id desc limit 21`,
        "payments_recipient_status_created_idx",
      ],
    ];
    for (const [query, index] of cases) {
      const text = await plan(query);
      expect(text, text).toContain(index);
      expect(text, text).not.toMatch(/Sort|Seq Scan/);
    }
  });

  test("without a role filter, the two index-ordered branches are merged", async () => {
    const branch = (party: string) => `(select * from payments.payments where ${party} = '${me()}' ${keyset} order by created_at desc, id desc limit 21)`;
    const text = await plan(`select * from (${branch("sender_id")} union all ${branch("recipient_id")}) as mine order by created_at desc, id desc limit 21`);
    expect(text, text).toContain("payments_sender_created_idx");
    expect(text, text).toContain("payments_recipient_created_idx");
    expect(text, text).toContain("Merge Append");
    expect(text, text).not.toMatch(/Seq Scan|(^|->\s+)Sort\s+\(/m);
  });

  test("the cron's queries use their partial indexes", async () => {
    expect(await plan(`select id from payments.payments where status = 'pending' and due_at <= now() order by due_at limit 50`)).toContain(
      "payments_pending_due_idx",
    );
    expect(await plan(`select id from payments.payments where status = 'processing' and updated_at < now() order by updated_at limit 50`)).toContain(
      "payments_processing_idx",
    );
    expect(
      await plan(
        `select id from payments.payments where type = 'recurring' and status = 'completed' and next_payment_id is null order by completed_at limit 50`,
      ),
    ).toContain("payments_recurring_next_idx");
    expect(await plan(`select * from payments.payment_transactions where payment_id = '${sent[0]}' order by seq`)).toContain(
      "payment_transactions_payment_idx",
    );
  });
});
