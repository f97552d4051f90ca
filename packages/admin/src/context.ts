import { contextFromConfig, type ServiceContext } from "@enclave/core";
import type { AdminConfig } from "./config";

export interface AdminContext extends ServiceContext {}

/** The admin context of a deployed function: nothing connected yet. */
export function adminContextFromConfig(config: AdminConfig, overrides: Partial<AdminContext> = {}): AdminContext {
  return contextFromConfig(config, overrides);
}
