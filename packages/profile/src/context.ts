import { type ContextOverrides, contextFromConfig, type ServiceContext } from "@enclave/core";
import type { ProfileConfig } from "./config";
import { profileInbox, profileOutbox } from "./profile.sql";

export interface ProfileContext extends ServiceContext {}

/** The profile context of a deployed function: nothing connected yet. */
export function profileContextFromConfig(config: ProfileConfig, overrides: ContextOverrides = {}): ProfileContext {
  return contextFromConfig(config, { outbox: profileOutbox, inbox: profileInbox, ...overrides });
}
