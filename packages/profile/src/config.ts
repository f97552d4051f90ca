import { parseCommonConfig } from "@enclave/core";

/** The profile service reads only the variables every service reads. */
export function readProfileConfig(env: Record<string, string | undefined> = process.env) {
  return parseCommonConfig("profile", env);
}
export type ProfileConfig = ReturnType<typeof readProfileConfig>;
