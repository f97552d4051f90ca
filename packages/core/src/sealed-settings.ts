import { createDecipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { ConfigError } from "./config-error";

type Env = Record<string, string | undefined>;

/**
 * Settings sealed into a deployed function's package instead of its configuration: keys and
 * database URLs, which anyone allowed to read a function's settings would otherwise read in
 * plain text. The deployment links them to the function (SST: one linked resource per variable,
 * properties `{variable, value}`); SST's build writes every link of the function to
 * `resource.enc` (AES-256-GCM under the 32-byte SST_KEY, zero nonce, tag last) and sets
 * SST_KEY and SST_KEY_FILE. Under `sst dev`, where functions run on the developer's machine,
 * SST hands the same links over as `SST_RESOURCE_<link>` variables (JSON) instead. A variable
 * set in the environment itself wins. Decrypted once per process; a bundle that is there but
 * cannot be read, or a link variable that is not JSON, stops start-up naming what is wrong.
 */
export function withSealedSettings(env: Env): Env {
  const linked = linkedSettings(env);
  if (!env.SST_KEY || !env.SST_KEY_FILE) {
    if (Object.keys(linked).length === 0) return env;
    return merge(env, linked);
  }
  const file = isAbsolute(env.SST_KEY_FILE) ? env.SST_KEY_FILE : join(env.LAMBDA_TASK_ROOT || process.cwd(), env.SST_KEY_FILE);
  const cacheKey = `${file}\0${env.SST_KEY}`;
  let sealed = sealedCache.get(cacheKey);
  if (!sealed) {
    sealed = readSealedSettings(file, env.SST_KEY);
    sealedCache.set(cacheKey, sealed);
  }
  return merge(env, { ...sealed, ...linked });
}

function merge(env: Env, settings: Record<string, string>): Env {
  const merged: Env = { ...env };
  for (const [name, value] of Object.entries(settings)) if (merged[name] === undefined) merged[name] = value;
  return merged;
}

/** Links SST passes as variables (`sst dev`): `SST_RESOURCE_<link>` holding the link's properties as JSON. */
function linkedSettings(env: Env): Record<string, string> {
  const links: Record<string, unknown> = {};
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith("SST_RESOURCE_Sealed") || text === undefined) continue;
    try {
      links[name] = JSON.parse(text);
    } catch {
      throw new ConfigError([`${name}: not the JSON SST writes for a link`]);
    }
  }
  return settingsOf(links);
}

const sealedCache = new Map<string, Record<string, string>>();

function readSealedSettings(file: string, key: string): Record<string, string> {
  let links: Record<string, unknown>;
  try {
    const data = readFileSync(file);
    const decipher = createDecipheriv("aes-256-gcm", Buffer.from(key, "base64"), Buffer.alloc(12));
    decipher.setAuthTag(data.subarray(-16));
    links = JSON.parse(Buffer.concat([decipher.update(data.subarray(0, -16)), decipher.final()]).toString("utf8"));
  } catch (error) {
    // Only the reason's kind: the file's content is secret.
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "the file is missing" : "it does not decrypt with SST_KEY";
    throw new ConfigError([`SST_KEY_FILE: cannot read the sealed settings (${reason})`]);
  }
  return settingsOf(links);
}

/** The `{variable, value}` links as variables; any other link (a bus, a bucket) is not a setting. */
function settingsOf(links: Record<string, unknown>): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const link of Object.values(links ?? {}) as ({ variable?: unknown; value?: unknown } | null)[]) {
    if (typeof link?.variable === "string" && /^[A-Z][A-Z0-9_]*$/.test(link.variable) && typeof link.value === "string") settings[link.variable] = link.value;
  }
  return settings;
}
