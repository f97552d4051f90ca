import { parseCommonConfig } from "@enclave/core";

/** The admin service reads only the variables every service reads. */
export function readAdminConfig(env: Record<string, string | undefined> = process.env) {
  return parseCommonConfig("admin", env);
}
export type AdminConfig = ReturnType<typeof readAdminConfig>;
