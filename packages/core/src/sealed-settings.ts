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
 * SST_KEY and SST_KEY_FILE. A variable set in the environment itself wins. Decrypted once per
 * process; a bundle that is there but cannot be read stops start-up, naming SST_KEY_FILE.
 */
export function withSealedSettings(env: Env): Env {
  if (!env.SST_KEY || !env.SST_KEY_FILE) return env;
  const file = isAbsolute(env.SST_KEY_FILE) ? env.SST_KEY_FILE : join(env.LAMBDA_TASK_ROOT || process.cwd(), env.SST_KEY_FILE);
  const cacheKey = `${file}\0${env.SST_KEY}`;
  let sealed = sealedCache.get(cacheKey);
  if (!sealed) {
    sealed = readSealedSettings(file, env.SST_KEY);
    sealedCache.set(cacheKey, sealed);
  }
  const merged: Env = { ...env };
  for (const [name, value] of Object.entries(sealed)) if (merged[name] === undefined) merged[name] = value;
  return merged;
}

const sealedCache = new Map<string, Record<string, string>>();

function readSealedSettings(file: string, key: string): Record<string, string> {
  let links: Record<string, { variable?: unknown; value?: unknown }>;
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
  const settings: Record<string, string> = {};
  for (const link of Object.values(links ?? {})) {
    if (typeof link?.variable === "string" && /^[A-Z][A-Z0-9_]*$/.test(link.variable) && typeof link.value === "string") settings[link.variable] = link.value;
  }
  return settings;
}
