import { createServiceApp, userOf } from "@enclave/core";
import type { Context } from "hono";
import * as z from "zod/mini";
import { AuditLogPage, AuditLogQuery, listAuditLogs } from "./audit";
import type { AdminContext } from "./context";
import { adminManifest } from "./manifest";
import { requestOrigin } from "./origin";
import { type ConfigActor, ConfigInput, ConfigItem, ConfigKey, ConfigList, deleteConfig, getConfig, listConfig, putConfig } from "./system-config";

const admins = { roles: ["ADMIN" as const] };
const KeyParams = z.object({ key: ConfigKey });

function actorOf(c: Context, userId: string): ConfigActor {
  return { userId, correlationId: c.get("requestId"), ...requestOrigin(c) };
}

export function createAdminApp(ctx: AdminContext) {
  const { app, routes } = createServiceApp({ name: "admin", prefix: adminManifest.prefix, version: "1", database: ctx.database, verifier: ctx.verifier });

  routes
    .add(
      {
        method: "get",
        path: "/audit-logs",
        summary: "The audit log, newest first",
        access: admins,
        query: AuditLogQuery,
        responses: { 200: { description: "A page of audit-log rows", schema: AuditLogPage } },
      },
      async (c, { query }) => c.json(await listAuditLogs(ctx, query)),
    )
    .add(
      {
        method: "get",
        path: "/config",
        summary: "All system configuration",
        access: admins,
        responses: { 200: { description: "Every key, by key", schema: ConfigList } },
      },
      async (c) => c.json({ items: await listConfig(ctx) }),
    )
    .add(
      {
        method: "get",
        path: "/config/:key",
        summary: "One configuration key",
        access: admins,
        params: KeyParams,
        responses: { 200: { description: "The key", schema: ConfigItem }, 404: { description: "No such key" } },
      },
      async (c, { params }) => c.json(await getConfig(ctx, params.key)),
    )
    .add(
      {
        method: "put",
        path: "/config/:key",
        summary: "Create or replace a configuration key (publishes config.changed)",
        access: admins,
        params: KeyParams,
        body: ConfigInput,
        responses: { 200: { description: "The key as stored", schema: ConfigItem } },
      },
      async (c, { params, body, principal }) => {
        return c.json(await putConfig(ctx, params.key, body, actorOf(c, userOf(principal).userId)));
      },
    )
    .add(
      {
        method: "delete",
        path: "/config/:key",
        summary: "Delete a configuration key (publishes config.changed)",
        access: admins,
        params: KeyParams,
        responses: { 204: { description: "Deleted" }, 404: { description: "No such key" } },
      },
      async (c, { params, principal }) => {
        await deleteConfig(ctx, params.key, actorOf(c, userOf(principal).userId));
        return c.body(null, 204);
      },
    );
  return app;
}
