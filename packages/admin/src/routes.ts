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

const description =
  "Administration, for ADMIN users only: the audit log, one row for every event of the app (recorded exactly once per event), and the system configuration that clients and services read.";

export function createAdminApp(ctx: AdminContext) {
  const { app, routes } = createServiceApp({
    name: "admin",
    prefix: adminManifest.prefix,
    version: "1",
    database: ctx.database,
    verifier: ctx.verifier,
    docs: { description },
  });

  routes
    .add(
      {
        method: "get",
        path: "/audit-logs",
        operationId: "getAuditLogs",
        summary: "The audit log, newest first",
        description:
          "A page of audit-log rows, newest first, optionally only those about one user, of one event type or resource type, or within a time range.",
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
        operationId: "listConfigItems",
        summary: "All system configuration",
        description: "Every configuration key with its value, by key.",
        access: admins,
        responses: { 200: { description: "Every key, by key", schema: ConfigList } },
      },
      async (c) => c.json({ items: await listConfig(ctx) }),
    )
    .add(
      {
        method: "get",
        path: "/config/:key",
        operationId: "getConfigItem",
        summary: "One configuration key",
        description: "One configuration key with its value.",
        access: admins,
        params: KeyParams,
        responses: { 200: { description: "The key", schema: ConfigItem }, 404: { description: "`not_found`: no such key" } },
      },
      async (c, { params }) => c.json(await getConfig(ctx, params.key)),
    )
    .add(
      {
        method: "put",
        path: "/config/:key",
        operationId: "putConfigItem",
        summary: "Create or replace a configuration key (publishes config.changed)",
        description:
          "Sets the key's value (creating the key if needed) and records the change in the audit log with the caller's IP address and user agent; publishes `config.changed`.",
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
        operationId: "deleteConfigItem",
        summary: "Delete a configuration key (publishes config.changed)",
        description: "Deletes the key, recording its last value in the audit log; publishes `config.changed`.",
        access: admins,
        params: KeyParams,
        responses: { 204: { description: "Deleted" }, 404: { description: "`not_found`: no such key" } },
      },
      async (c, { params, principal }) => {
        await deleteConfig(ctx, params.key, actorOf(c, userOf(principal).userId));
        return c.body(null, 204);
      },
    );
  return app;
}
