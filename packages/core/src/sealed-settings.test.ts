import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { ConfigError, parseCommonConfig, withSealedSettings } from "./config";

/**
 * Settings sealed in a function's package: `resource.enc` as SST's build writes it (the links
 * as JSON, AES-256-GCM under SST_KEY, zero nonce, tag appended), read back as variables.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function seal(links: unknown, key = randomBytes(32)) {
  const dir = mkdtempSync(join(tmpdir(), "enclave-sealed-"));
  dirs.push(dir);
  const cipher = createCipheriv("aes-256-gcm", key, Buffer.alloc(12));
  writeFileSync(join(dir, "resource.enc"), Buffer.concat([cipher.update(JSON.stringify(links)), cipher.final(), cipher.getAuthTag()]));
  return { dir, key: key.toString("base64") };
}

const url = "postgres://profile_app:s3cret-pass@ep-x-pooler.us-east-1.aws.neon.tech/profile?sslmode=require";

describe("sealed settings", () => {
  test("without SST_KEY the environment is all there is", () => {
    const env = { STAGE: "pr-1" };
    expect(withSealedSettings(env)).toBe(env);
  });

  test("each linked {variable, value} becomes that variable; other links are ignored; the environment wins", () => {
    const { dir, key } = seal({
      SealedProfileDatabaseUrl: { variable: "PROFILE_DATABASE_URL", value: url, type: "sst.sst.Linkable" },
      SealedAuthSigningKey: { variable: "AUTH_SIGNING_KEY", value: '{"kty":"EC"}', type: "sst.sst.Linkable" },
      Bus: { name: "bus", arn: "arn:aws:events:::event-bus/bus", type: "sst.aws.Bus" },
      Odd: { variable: "lower_case", value: "x" },
    });
    const env = withSealedSettings({ SST_KEY: key, SST_KEY_FILE: "resource.enc", LAMBDA_TASK_ROOT: dir, AUTH_SIGNING_KEY: "from-env" });
    expect(env).toMatchObject({ PROFILE_DATABASE_URL: url, AUTH_SIGNING_KEY: "from-env" });
    expect(Object.keys(env).sort()).toEqual(["AUTH_SIGNING_KEY", "LAMBDA_TASK_ROOT", "PROFILE_DATABASE_URL", "SST_KEY", "SST_KEY_FILE"]);
    expect(parseCommonConfig("profile", { SST_KEY: key, SST_KEY_FILE: join(dir, "resource.enc") }).databaseUrl).toBe(url);
  });

  test("under sst dev the links arrive as SST_RESOURCE_<link> variables and are read the same way", () => {
    const env = withSealedSettings({
      STAGE: "dev",
      SST_RESOURCE_SealedProfileDatabaseUrl: JSON.stringify({ variable: "PROFILE_DATABASE_URL", value: url, type: "sst.sst.Linkable" }),
      SST_RESOURCE_SealedAuthSigningKey: JSON.stringify({ variable: "AUTH_SIGNING_KEY", value: '{"kty":"EC"}' }),
      SST_RESOURCE_App: JSON.stringify({ name: "enclave", stage: "dev" }),
      AUTH_SIGNING_KEY: "from-env",
    });
    expect(env).toMatchObject({ PROFILE_DATABASE_URL: url, AUTH_SIGNING_KEY: "from-env", STAGE: "dev" });
    expect(
      parseCommonConfig("profile", { SST_RESOURCE_SealedProfileDatabaseUrl: JSON.stringify({ variable: "PROFILE_DATABASE_URL", value: url }) }).databaseUrl,
    ).toBe(url);
    let refused: unknown;
    try {
      parseCommonConfig("profile", { SST_RESOURCE_SealedProfileDatabaseUrl: "postgres://not-json" });
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).problems).toEqual(["SST_RESOURCE_SealedProfileDatabaseUrl: not the JSON SST writes for a link"]);
    expect((refused as ConfigError).message).not.toContain("not-json");
  });

  test("a bundle that does not decrypt, or is missing, stops start-up naming SST_KEY_FILE and the service, never a value", () => {
    const { dir } = seal({ SealedProfileDatabaseUrl: { variable: "PROFILE_DATABASE_URL", value: url } });
    const wrongKey = randomBytes(32).toString("base64");
    const attempt = (env: Record<string, string>) => {
      try {
        parseCommonConfig("profile", env);
      } catch (error) {
        return error as ConfigError;
      }
      throw new Error("configuration was accepted");
    };
    const wrong = attempt({ SST_KEY: wrongKey, SST_KEY_FILE: "resource.enc", LAMBDA_TASK_ROOT: dir });
    expect(wrong).toBeInstanceOf(ConfigError);
    expect(wrong.service).toBe("profile");
    expect(wrong.problems).toEqual(["SST_KEY_FILE: cannot read the sealed settings (it does not decrypt with SST_KEY)"]);
    expect(wrong.message).not.toContain("s3cret");
    const missing = attempt({ SST_KEY: wrongKey, SST_KEY_FILE: "resource.enc", LAMBDA_TASK_ROOT: join(dir, "nowhere") });
    expect(missing.problems).toEqual(["SST_KEY_FILE: cannot read the sealed settings (the file is missing)"]);
  });
});
