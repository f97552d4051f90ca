import { afterAll, beforeAll, expect, test } from "vitest";
import { adminOutbox, auditLogsTable, systemConfigTable } from "./admin.sql";
import { adminService } from "./index";
import { essentialConfig } from "./seed";
import { type AdminHarness, call, createAdminHarness } from "./testing";

let h: AdminHarness;
beforeAll(async () => {
  h = await createAdminHarness();
});
afterAll(() => h?.dispose());

const seed = () => adminService.seeds.essential!(h.ctx, { adminPassword: "unused" });

test("the essential seed writes the defaults once, each with config.changed and an audit row", async () => {
  await seed();
  const admin = await h.token("ADMIN");
  const list = await call(h.app, "GET", "/admin/config", undefined, admin);
  expect(list.body.items).toEqual(
    [...essentialConfig]
      .sort((a, b) => a.key.localeCompare(b.key))
      .map((item) => ({ key: item.key, value: item.value, description: item.description, updatedAt: expect.any(String), updatedBy: null })),
  );
  expect(h.bus.entries.map((e) => e.detail.data.key).sort()).toEqual(essentialConfig.map((i) => i.key).sort());
  const audit = await h.database.db.select().from(auditLogsTable);
  expect(audit).toHaveLength(essentialConfig.length);
  expect(audit[0]).toMatchObject({ action: "config.changed", userId: null, actorId: null, correlationId: "seed:essential", details: { operation: "created" } });

  // An admin changes one default; seeding again changes nothing and records nothing.
  const changed = await call(h.app, "PUT", "/admin/config/maintenance.enabled", { value: true }, admin);
  expect(changed.status).toBe(200);
  const before = { config: await h.database.db.select().from(systemConfigTable), events: h.bus.entries.length };
  await seed();
  await seed();
  expect(await h.database.db.select().from(systemConfigTable)).toEqual(before.config);
  expect(h.bus.entries).toHaveLength(before.events);
  expect(await h.database.db.select().from(auditLogsTable)).toHaveLength(essentialConfig.length + 1);
  expect(await h.database.db.select().from(adminOutbox)).toHaveLength(essentialConfig.length + 1);
  expect((await call(h.app, "GET", "/admin/config/maintenance.enabled", undefined, admin)).body.value).toBe(true);
});
