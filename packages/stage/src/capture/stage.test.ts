import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authManifest } from "@enclave/auth/manifest";
import { withSealedSettings } from "@enclave/core/config";
import type { Cron, Subscription } from "@enclave/core/jobs";
import { generatePrivateJwk } from "@enclave/core/keys";
import { localServices } from "@enclave/local/services";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { deadLetterTags } from "../../../../infra/dead-letter-tags";
import { deployedServices } from "../../../../infra/services";
import { unpackZip } from "../lambda/zip";
import type { StageFunction, StageModel } from "./model";
import { type CapturedStage, captureStageModel } from "./stage";

/**
 * The real sst.config.ts, run under Pulumi's mocks: these tests read what a deploy would create,
 * not infra/'s plan of it.
 */

const manifests = deployedServices.map((d) => d.manifest);
/** Every job the services declare (their jobs.ts), read here from the code itself. */
const declared = localServices.flatMap(({ module }) => Object.entries(module.jobs).map(([name, job]) => ({ service: module.manifest.name, name, job })));
const subscriptionsDeclared = declared.flatMap(({ service, name, job }) => (job.kind === "subscription" ? [{ service, name, ...(job as Subscription) }] : []));
const cronsDeclared = declared.flatMap(({ service, name, job }) => (job.kind === "cron" ? [{ service, name, ...(job as Cron) }] : []));
const captured: CapturedStage[] = [];
const capture = async (...args: Parameters<typeof captureStageModel>) => {
  const result = await captureStageModel(...args);
  captured.push(result);
  return result;
};
afterAll(() => {
  for (const { work } of captured) rmSync(work, { recursive: true, force: true });
});

const environmentOf = (model: StageModel, component: string): Record<string, string> => {
  const fn = model.functions.find((f) => f.component === component);
  if (!fn) throw new Error(`no function ${component}`);
  return fn.environment;
};
const serviceOf = (fn: StageFunction) => manifests.find((m) => fn.component.toLowerCase().startsWith(m.name))?.name;

/**
 * What a function's configuration reads from its package: `resource.enc` from the uploaded zip,
 * decrypted with the SST_KEY of its configuration by the same code the functions run.
 */
async function sealedOf(fn: StageFunction): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), "enclave-sealed-"));
  try {
    await unpackZip(fn.codeZip, dir);
    const plain = { SST_KEY: fn.environment.SST_KEY, SST_KEY_FILE: fn.environment.SST_KEY_FILE, LAMBDA_TASK_ROOT: dir };
    const all = withSealedSettings(plain);
    return Object.fromEntries(Object.entries(all).filter(([name]) => !(name in plain))) as Record<string, string>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Nothing secret in any function's configuration, which anyone allowed to read a function's
 * settings reads: no variable that carries one, no private JWK, no URL with a password, and
 * none of the secret values the functions' packages hold, anywhere in any value.
 */
async function expectNoSecretInConfiguration(model: StageModel) {
  const secrets = new Set<string>();
  for (const fn of model.functions) {
    for (const value of Object.values(await sealedOf(fn))) {
      secrets.add(value);
      if (/^postgres(ql)?:\/\//.test(value)) secrets.add(decodeURIComponent(new URL(value).password));
      if (value.startsWith("{")) {
        const jwk = JSON.parse(value) as { d?: unknown; keys?: { d?: unknown }[] };
        for (const key of jwk.keys ?? [jwk]) if (typeof key.d === "string") secrets.add(key.d);
      }
    }
  }
  expect(secrets.size).toBeGreaterThan(0);
  for (const fn of model.functions) {
    for (const [name, value] of Object.entries(fn.environment)) {
      const where = `${fn.component} ${name}`;
      expect(name, where).not.toMatch(/_DATABASE_URL$|_SIGNING_KEY$|_RUNTIME_PASSWORD$|^MIGRATE_ADMIN_URL$/);
      expect(value, where).not.toMatch(/"d"\s*:/);
      expect(value, where).not.toMatch(/:\/\/[^/@\s]*:[^/@\s]+@/);
      for (const secret of secrets) expect(value.includes(secret), `${where} holds a sealed value`).toBe(false);
    }
  }
}

describe("a preview stage, a database per service", () => {
  let model: StageModel;
  beforeAll(async () => {
    ({ model } = await capture({ stage: "pr-42" }));
  }, 120_000);

  test("the program runs with no program error", () => {
    expect(model.errors).toEqual([]);
    expect(model.resourceCount).toBeGreaterThan(150);
  });

  test("the migrate function creates exactly the databases and roles the functions connect to", async () => {
    const migrate = environmentOf(model, "Migrate");
    expect(migrate.MIGRATE_TOPOLOGY).toBe("per-service");
    expect(migrate.MIGRATE_DATABASE).toBeUndefined();
    expect(migrate.MIGRATE_SERVICES?.split(",")).toEqual(manifests.map((m) => m.name));
    const migrateSealed = await sealedOf(model.functions.find((f) => f.component === "Migrate")!);
    expect(new URL(migrateSealed.MIGRATE_ADMIN_URL!).username).toBe("neondb_owner");
    for (const fn of model.functions.filter((f) => f.component !== "Migrate")) {
      const service = serviceOf(fn)!;
      const urls = Object.entries(await sealedOf(fn)).filter(([name]) => name.endsWith("_DATABASE_URL"));
      // Only its own database: no function can reach another service's data.
      expect(
        urls.map(([name]) => name),
        fn.component,
      ).toEqual([`${service.toUpperCase()}_DATABASE_URL`]);
      const url = new URL(urls[0]![1]);
      expect(url.pathname, fn.component).toBe(`/${service}`);
      expect(url.username).toBe(`${service}_app`);
      expect(decodeURIComponent(url.password)).toBe(migrateSealed[`${service.toUpperCase()}_RUNTIME_PASSWORD`]);
      expect(url.hostname).toMatch(/-pooler\..*\.neon\.tech$/);
    }
  });

  test("the branch starts from the schema-only seed branch, never production's", () => {
    expect(model.neon.branch).toEqual({ name: "pr-42", parentId: "br-twin-seed" });
  });

  test("the migrate function seeds the essential and development sets, once per deploy", () => {
    const migrate = environmentOf(model, "Migrate");
    expect(migrate.MIGRATE_SEEDS).toBe("essential,development");
    expect(model.invocations).toHaveLength(1);
    expect(model.invocations[0]!.functionName).toBe(model.functions.find((f) => f.component === "Migrate")!.name);
    expect(Object.keys(model.invocations[0]!.triggers)).toEqual(["deployedAt"]);
  });

  test("every prefix is routed to its service's API function, as payload 2.0", () => {
    for (const manifest of manifests) {
      for (const routeKey of [`ANY ${manifest.prefix}`, `ANY ${manifest.prefix}/{proxy+}`]) {
        const route = model.routes.find((r) => r.routeKey === routeKey);
        expect(route, routeKey).toBeDefined();
        const fn = model.functions.find((f) => f.name === route!.functionName)!;
        expect(fn.handler).toBe("api.handler");
        expect(serviceOf(fn)).toBe(manifest.name);
        expect(route!.payloadFormatVersion).toBe("2.0");
      }
    }
    expect(model.routes).toHaveLength(manifests.length * 2);
  });

  test("every subscription is a rule with its declared pattern, retries and a dead-letter queue", () => {
    const subscriptions = subscriptionsDeclared;
    expect(model.rules).toHaveLength(subscriptions.length);
    const queues = new Set(model.queues.map((q) => q.arn));
    for (const subscription of subscriptions) {
      const rule = model.rules.find((r) => JSON.parse(r.eventPattern) && r.eventPattern === JSON.stringify(subscription.pattern));
      expect(rule, subscription.name).toBeDefined();
      expect(rule!.busName).toBe(model.bus.name);
      const [target] = rule!.targets;
      expect(target?.deadLetterArn && queues.has(target.deadLetterArn)).toBe(true);
      const fn = model.functions.find((f) => f.name === target!.functionName)!;
      expect(fn.component.toLowerCase()).toContain(subscription.name.replaceAll("-", ""));
      expect(fn.environment.JOB_NAME, fn.component).toBe(subscription.name);
      expect(fn.asyncInvoke?.maximumRetryAttempts).toBe(2);
      expect(queues.has(fn.asyncInvoke!.onFailureDestination!)).toBe(true);
    }
  });

  test("every cron is a schedule of its own function, with a dead-letter queue", () => {
    const crons = cronsDeclared;
    expect(model.schedules).toHaveLength(crons.length);
    for (const schedule of model.schedules) {
      expect(schedule.enabled).toBe(true);
      expect(crons.map((c) => c.schedule)).toContain(schedule.expression);
      const fn = model.functions.find((f) => f.name === schedule.functionName)!;
      expect(
        crons.filter((c) => c.schedule === schedule.expression).map((c) => c.name),
        fn.component,
      ).toContain(fn.environment.JOB_NAME);
      expect(model.queues.map((q) => q.arn)).toContain(schedule.deadLetterArn);
    }
    // One function per schedule: no two schedules share a function name.
    expect(new Set(model.schedules.map((s) => s.functionName)).size).toBe(model.schedules.length);
  });

  test("each function's package is the zip the deploy uploads, named by its SHA-256", () => {
    for (const fn of model.functions) {
      expect(createHash("sha256").update(readFileSync(fn.codeZip)).digest("hex"), fn.component).toBe(fn.codeSha256);
    }
  });

  test("only auth signs user tokens and only callers of other services sign service tokens", async () => {
    for (const fn of model.functions.filter((f) => f.component !== "Migrate")) {
      const sealed = await sealedOf(fn);
      expect("AUTH_SIGNING_KEY" in sealed, fn.component).toBe(serviceOf(fn) === authManifest.name);
      expect("SERVICE_SIGNING_KEY" in sealed, fn.component).toBe(serviceOf(fn) === "payments");
      expect(fn.environment.AUTH_PUBLIC_JWKS).not.toContain('"d"');
    }
  });

  test("no function's configuration holds a private key or a database password: they are sealed in its package", async () => {
    const auth = model.functions.find((f) => f.component === "AuthApi")!;
    expect(auth.sealed).toEqual(["AUTH_DATABASE_URL", "AUTH_SIGNING_KEY"]);
    expect(Object.keys(await sealedOf(auth)).sort()).toEqual(auth.sealed);
    expect(JSON.parse((await sealedOf(auth)).AUTH_SIGNING_KEY!)).toMatchObject({ kty: "EC", crv: "P-256", d: expect.any(String) });
    await expectNoSecretInConfiguration(model);
  });

  test("every dead-letter queue is tagged with its job and has an alarm on a non-empty queue, notifying the stage's topic", () => {
    const topic = model.topics.find((t) => t.arn === model.outputs.alarms);
    expect(topic, "the alarms output names the stage's topic").toBeDefined();
    const deadLetterArns = new Set([
      ...model.functions.flatMap((f) => (f.asyncInvoke?.onFailureDestination ? [f.asyncInvoke.onFailureDestination] : [])),
      ...model.rules.flatMap((r) => r.targets.flatMap((t) => (t.deadLetterArn ? [t.deadLetterArn] : []))),
      ...model.schedules.flatMap((s) => (s.deadLetterArn ? [s.deadLetterArn] : [])),
    ]);
    expect(deadLetterArns.size).toBe(subscriptionsDeclared.length + cronsDeclared.length);
    expect(model.queues.map((q) => q.arn).sort()).toEqual([...deadLetterArns].sort());
    for (const queue of model.queues) {
      const alarms = model.alarms.filter((a) => a.dimensions.QueueName === queue.name);
      expect(alarms, queue.name).toHaveLength(1);
      expect(alarms[0]).toMatchObject({
        namespace: "AWS/SQS",
        metricName: "ApproximateNumberOfMessagesVisible",
        comparisonOperator: "GreaterThanThreshold",
        threshold: 0,
        evaluationPeriods: 1,
        treatMissingData: "notBreaching",
        alarmActions: [topic!.arn],
        okActions: [topic!.arn],
      });
      // The tag names the job whose function dead-letters into the queue.
      const fn = model.functions.find((f) => f.asyncInvoke?.onFailureDestination === queue.arn)!;
      expect(queue.tags[deadLetterTags.stage]).toBe("pr-42");
      expect(queue.tags[deadLetterTags.job], queue.name).toBe(`${serviceOf(fn)}/${fn.environment.JOB_NAME}`);
    }
    expect(model.alarms).toHaveLength(model.queues.length);
  });
});

describe("other stages and settings", () => {
  test("single topology: every service in the one database, each as its own role", async () => {
    const { model } = await capture({ stage: "pr-43", topology: "single" });
    expect(model.errors).toEqual([]);
    const migrate = environmentOf(model, "Migrate");
    expect(migrate).toMatchObject({ MIGRATE_TOPOLOGY: "single", MIGRATE_DATABASE: "enclave" });
    for (const manifest of manifests) {
      const api = model.functions.find((f) => f.component === `${manifest.name[0]!.toUpperCase()}${manifest.name.slice(1)}Api`)!;
      const url = new URL((await sealedOf(api))[`${manifest.name.toUpperCase()}_DATABASE_URL`]!);
      expect(url.pathname).toBe("/enclave");
      expect(url.username).toBe(`${manifest.name}_app`);
    }
  }, 120_000);

  test("production: the project's own branch, the essential seed only, retained and protected", async () => {
    const { model } = await capture({ stage: "production" });
    expect(model.errors).toEqual([]);
    expect(model.neon.branch).toBeUndefined();
    expect(environmentOf(model, "Migrate").MIGRATE_SEEDS).toBe("essential");
    expect(model.app).toMatchObject({ removal: "retain", protect: true });
    await expectNoSecretInConfiguration(model);
  }, 120_000);

  test("staging seeds: the deploy needs the StagingSeedPassword secret and seals it into the migrate function only", async () => {
    const missing = await capture({ stage: "staging", settings: { ENCLAVE_SEED: "staging" } });
    expect(missing.model.errors.join("\n")).toMatch(/StagingSeedPassword/);

    const password = "staging-Pa55word-from-the-vault";
    const { model } = await capture({ stage: "staging", settings: { ENCLAVE_SEED: "staging" }, secrets: { StagingSeedPassword: password } });
    expect(model.errors).toEqual([]);
    expect(environmentOf(model, "Migrate").MIGRATE_SEEDS).toBe("essential,staging");
    expect((await sealedOf(model.functions.find((f) => f.component === "Migrate")!)).STAGING_SEED_PASSWORD).toBe(password);
    for (const fn of model.functions.filter((f) => f.component !== "Migrate")) expect(fn.sealed, fn.component).not.toContain("STAGING_SEED_PASSWORD");
    await expectNoSecretInConfiguration(model);
  }, 120_000);

  test("rotating the signing key: a key set deploys, auth holds it sealed, every function verifies with both public keys", async () => {
    const [next, current] = [generatePrivateJwk(), generatePrivateJwk()];
    const keySet = JSON.stringify({ keys: [next, current] });
    const { model } = await capture({ stage: "pr-46", secrets: { AuthSigningKey: keySet } });
    expect(model.errors).toEqual([]);
    expect((await sealedOf(model.functions.find((f) => f.component === "AuthApi")!)).AUTH_SIGNING_KEY).toBe(keySet);
    const verifying = model.functions.filter((f) => f.environment.AUTH_PUBLIC_JWKS !== undefined);
    expect(verifying.length).toBeGreaterThan(0);
    for (const fn of verifying) {
      const jwks = JSON.parse(fn.environment.AUTH_PUBLIC_JWKS!) as { keys: { kid: string; d?: string }[] };
      expect([fn.component, jwks.keys.map((k) => k.kid), jwks.keys.some((k) => k.d !== undefined)]).toEqual([fn.component, [next.kid, current.kid], false]);
    }
    await expectNoSecretInConfiguration(model);
  }, 120_000);

  test("a preview branched from production's data fails the deploy unless asked for explicitly", async () => {
    const refused = await capture({ stage: "pr-44", settings: { NEON_PARENT_BRANCH: "main" } });
    expect(refused.model.errors.join("\n")).toMatch(/copy its personal data/);
    const allowed = await capture({ stage: "pr-44", settings: { NEON_PARENT_BRANCH: "main", ENCLAVE_PREVIEW_FROM_PRODUCTION: "yes" } });
    expect(allowed.model.errors).toEqual([]);
    expect(allowed.model.neon.branch?.parentId).toBe("br-twin-main");
  }, 120_000);
});
