import { contextFromConfig, type ServiceContext } from "@enclave/core";
import type { ProfileConfig } from "./config";

export interface ProfileContext extends ServiceContext {}

/** The profile context of a deployed function: nothing connected yet. */
export function profileContextFromConfig(config: ProfileConfig, overrides: Partial<ProfileContext> = {}): ProfileContext {
  return contextFromConfig(config, overrides);
}
