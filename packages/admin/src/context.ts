import { type ContextOverrides, contextFromConfig, type ServiceContext } from "@enclave/core";
import { adminInbox, adminOutbox } from "./admin.sql";
import type { AdminConfig } from "./config";

export interface AdminContext extends ServiceContext {}

/** The admin context of a deployed function: nothing connected yet. */
export function adminContextFromConfig(config: AdminConfig, overrides: ContextOverrides = {}): AdminContext {
  return contextFromConfig(config, { outbox: adminOutbox, inbox: adminInbox, ...overrides });
}
