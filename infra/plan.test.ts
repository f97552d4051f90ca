import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { serviceRoles } from "@enclave/core/db/roles";
import { describeJobs, type JobDescriptor } from "@enclave/core/jobs";
import { generatePrivateJwk } from "@enclave/core/keys";
import type { Manifest } from "@enclave/core/manifest";
import { localServices } from "@enclave/local/services";
import * as esbuild from "esbuild";
import { describe, expect, test } from "vitest";
import { databasePlan, pooledHost, postgresUrl } from "./database-plan";
import { functionEnvironment, isSealedVariable, publicJwks } from "./environment";
import { declaredJobs } from "./jobs";
import { entryFile, planDeployment, type ServiceDeployment } from "./plan";
import { deployedServices } from "./services";
import { nodejs, unbundled } from "./sizing";
import { stageSettings } from "./stage";

const root = resolve(import.meta.dirname, "..");
/** The jobs as the deployment reads them: described by a child process, as infra/index.ts does. */
const jobs = declaredJobs(
  root,
  deployedServices.map((d) => d.manifest.name),
);
const plan = planDeployment(deployedServices, jobs);
/** The same jobs read from the code, as the local runtime runs them. */
const localJobs = localServices.flatMap(({ module }) => describeJobs(module.jobs).map((job) => ({ service: module.manifest.name, ...job })));
const deployedManifests = deployedServices.map((d) => d.manifest);
const localManifests = localServices.map((s) => s.module.manifest);
const byName = <T extends { name: string }>(items: T[]) => [...items].sort((a, b) => a.name.localeCompare(b.name));

/** Every service in the repository: a package with a manifest, jobs and routes (`src/manifest.ts`, `src/jobs.ts`, `src/routes.ts`). */
const manifestFiles = readdirSync(join(root, "packages"))
  .filter((dir) => ["manifest.ts", "jobs.ts", "routes.ts"].every((file) => existsSync(join(root, "packages", dir, "src", file))))
  .sort();

describe("services: infra, the local runtime and the repository agree", () => {
  test("every service with a manifest is deployed", () => {
    expect(plan.services.slice().sort()).toEqual(manifestFiles);
  });

  test("the local runtime and the cloud run the same services with the same manifests", () => {
    expect(byName(localManifests).map((m) => m.name)).toEqual(byName(deployedManifests).map((m) => m.name));
    for (const manifest of localManifests) expect(deployedManifests.find((m) => m.name === manifest.name)).toBe(manifest);
  });

  test("every deployed service has its migrations", () => {
    for (const service of plan.services) expect(existsSync(join(root, "migrations", service, "meta", "_journal.json")), service).toBe(true);
  });
});

describe("routes", () => {
  test("each service's prefix and everything under it go to its API function", () => {
    for (const manifest of deployedManifests) {
      const routes = plan.routes.filter((r) => r.service === manifest.name);
      expect(routes.map((r) => r.route)).toEqual([`ANY ${manifest.prefix}`, `ANY ${manifest.prefix}/{proxy+}`]);
      const fn = plan.functions.find((f) => f.resource === routes[0]?.resource);
      expect(fn).toMatchObject({ kind: "api", handler: `functions/${manifest.name}/api.handler` });
    }
    expect(plan.routes).toHaveLength(deployedManifests.length * 2);
  });

  test("route keys are unique", () => {
    expect(new Set(plan.routes.map((r) => r.route)).size).toBe(plan.routes.length);
  });
});

describe("subscriptions", () => {
  const key = (service: string, name: string, pattern: unknown) => `${service}/${name} ${JSON.stringify(pattern)}`;
  const localSubscriptions = localJobs.flatMap((j) => (j.kind === "subscription" ? [key(j.service, j.name, j.pattern)] : [])).sort();
  const infraSubscriptions = plan.subscriptions.map((s) => key(s.service, s.name, JSON.parse(s.eventPattern))).sort();

  test("every subscription of the local runtime has an EventBridge rule with the same pattern, and vice versa", () => {
    expect(infraSubscriptions).toEqual(localSubscriptions);
    expect(localSubscriptions.length).toBeGreaterThan(0);
  });

  test("each rule's pattern is the declared one, unchanged", () => {
    for (const planned of plan.subscriptions) {
      const declared = localJobs.find((j) => j.service === planned.service && j.name === planned.name);
      expect(declared?.kind === "subscription" && declared.pattern).toEqual(JSON.parse(planned.eventPattern));
    }
  });

  test("every job function runs from its service's jobs entry", () => {
    for (const planned of [...plan.subscriptions, ...plan.crons]) expect(planned.handler).toBe(`functions/${planned.service}/jobs.handler`);
  });
});

describe("crons", () => {
  test("every declared cron is scheduled with its schedule, and nothing else is", () => {
    const infra = plan.crons.map((c) => `${c.service}/${c.name} ${c.schedule}`).sort();
    const local = localJobs.flatMap((j) => (j.kind === "cron" ? [`${j.service}/${j.name} ${j.schedule}`] : [])).sort();
    expect(infra).toEqual(local);
  });

  test("every service sweeps its outbox (the kernel adds the sweeper to every service that publishes)", () => {
    for (const service of plan.services)
      expect(
        plan.crons.some((c) => c.service === service && c.name === "outbox-sweeper"),
        service,
      ).toBe(true);
  });

  test("schedules are EventBridge Scheduler expressions", () => {
    for (const cron of plan.crons) expect(cron.schedule).toMatch(/^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$/);
  });
});

describe("functions", () => {
  test("every planned function has its entry point, and every entry point is deployed", () => {
    for (const fn of plan.functions) expect(existsSync(join(root, entryFile(fn))), entryFile(fn)).toBe(true);
    const entries = plan.services.flatMap((service) =>
      existsSync(join(root, "functions", service))
        ? readdirSync(join(root, "functions", service))
            .filter((file) => file.endsWith(".ts") && !file.endsWith(".test.ts"))
            .map((file) => `functions/${service}/${file}`)
        : [],
    );
    expect(entries.sort()).toEqual([...new Set(plan.functions.map(entryFile))].sort());
  });

  test("function names are unique and sizing is explicit", () => {
    expect(new Set(plan.functions.map((f) => f.resource)).size).toBe(plan.functions.length);
    for (const fn of plan.functions) expect(fn.sizing.memory).toMatch(/^\d+ MB$/);
    expect(plan.functions.find((f) => f.service === "auth" && f.kind === "api")?.sizing.memory).toBe("1769 MB");
  });

  test("bundles leave out the drivers the cloud never uses, and split so they load lazily", () => {
    expect(unbundled).toEqual(expect.arrayContaining(["@electric-sql/pglite", "pg"]));
    expect(nodejs).toMatchObject({ format: "esm", minify: true, splitting: true });
  });

  test("a manifest mistake stops the plan", () => {
    const auth = deployedManifests.find((m) => m.name === "auth")!;
    const with_ = (changes: Partial<Manifest>): ServiceDeployment => ({ manifest: { ...auth, ...changes } });
    const none = {};
    expect(() => planDeployment([with_({}), with_({ name: "other" })], none)).toThrow(/prefix \/auth is already routed/);
    expect(() => planDeployment([with_({}), with_({})], none)).toThrow(/listed twice/);
    expect(() => planDeployment([with_({ prefix: "/auth/v1" })], none)).toThrow(/one path segment/);
    const authJobs = (declared: JobDescriptor[]) => ({ auth: declared });
    expect(() => planDeployment([with_({})], authJobs([{ name: "Sweep", kind: "cron", description: "", schedule: "rate(1 minute)" }]))).toThrow(/kebab-case/);
    expect(() =>
      planDeployment(
        [with_({})],
        authJobs([
          { name: "a-b", kind: "subscription", description: "", pattern: { source: ["x"] } },
          { name: "a--b", kind: "subscription", description: "", pattern: { source: ["x"] } },
        ]),
      ),
    ).toThrow(/both be named AuthAB/);
  });

  test("the SST program and the plan load no application code: manifests, names and keys only", async () => {
    const result = await esbuild.build({
      entryPoints: [join(root, "infra", "index.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    const libraries = inputs.filter((file) => file.includes("node_modules/")).map((file) => file.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, "$1"));
    expect([...new Set(libraries)]).toEqual([]);
    const application = inputs.filter((file) => file.startsWith("packages/")).sort();
    expect(application).toEqual([
      "packages/admin/src/manifest.ts",
      "packages/auth/src/manifest.ts",
      "packages/core/src/db/role-names.ts",
      "packages/core/src/keys.ts",
      "packages/core/src/manifest.ts",
      "packages/payments/src/manifest.ts",
      "packages/profile/src/manifest.ts",
    ]);
  });
});

describe("function environment", () => {
  const authKey = JSON.stringify(generatePrivateJwk());
  const serviceKey = JSON.stringify(generatePrivateJwk());
  const environmentOf = (deployment: ServiceDeployment) =>
    functionEnvironment<string>(deployment, {
      app: "enclave",
      stage: "pr-7",
      busName: "bus",
      databaseUrl: `postgres://${deployment.manifest.name}_app:x@ep-a-1-pooler.us-east-1.aws.neon.tech/${deployment.manifest.name}?sslmode=require`,
      authPublicJwks: publicJwks("AuthSigningKey", authKey),
      servicePublicJwks: publicJwks("ServiceSigningKey", serviceKey),
      secrets: { AuthSigningKey: authKey, ServiceSigningKey: serviceKey },
      apiUrl: "https://api.example.com",
      schemaVersion: "abc",
    });

  test("a service gets its own database URL and only the secrets it declares", () => {
    for (const deployment of deployedServices) {
      const env = environmentOf(deployment);
      const urls = Object.keys(env).filter((k) => k.endsWith("_DATABASE_URL"));
      expect(urls).toEqual([`${deployment.manifest.name.toUpperCase()}_DATABASE_URL`]);
      expect("AUTH_SIGNING_KEY" in env).toBe(deployment.secrets?.includes("AuthSigningKey") ?? false);
      expect("SERVICE_SIGNING_KEY" in env).toBe(deployment.secrets?.includes("ServiceSigningKey") ?? false);
      expect(JSON.stringify(env.AUTH_PUBLIC_JWKS)).not.toContain('\\"d\\"');
    }
  });

  test("every variable that carries a private key or a database password is one the deployment seals", () => {
    for (const deployment of deployedServices) {
      const env = environmentOf(deployment) as Record<string, string>;
      const secret = (value: string) => value.includes(":x@") || value.includes(JSON.parse(authKey).d) || value.includes(JSON.parse(serviceKey).d);
      const carrying = Object.keys(env).filter((name) => secret(env[name]!));
      expect(carrying.length, deployment.manifest.name).toBeGreaterThan(0);
      for (const name of Object.keys(env)) expect(isSealedVariable(name), `${deployment.manifest.name} ${name}`).toBe(carrying.includes(name));
    }
    for (const name of ["MIGRATE_ADMIN_URL", "AUTH_RUNTIME_PASSWORD"]) expect(isSealedVariable(name)).toBe(true);
  });

  test("each service's configuration accepts exactly what the deployment gives it", async () => {
    for (const deployment of deployedServices) {
      const name = deployment.manifest.name;
      const config = (await import(`@enclave/${name}/config`)) as Record<string, unknown>;
      const read = Object.entries(config).find(([key, value]) => /^read\w+Config$/.test(key) && typeof value === "function")?.[1] as
        | ((env: Record<string, string>) => { STAGE: string; databaseUrl: string })
        | undefined;
      expect(read, `${name} has a read<Service>Config`).toBeDefined();
      const parsed = read!(environmentOf(deployment) as Record<string, string>);
      expect(parsed.STAGE).toBe("pr-7");
      expect(parsed.databaseUrl).toContain(`/${name}?`);
    }
  });
});

describe("stages and databases", () => {
  test("production uses the default branch; other stages branch from a configurable parent", () => {
    expect(stageSettings("production", {})).toMatchObject({ production: true, topology: "per-service", seeds: ["essential"] });
    expect(stageSettings("pr-12", { NEON_PARENT_BRANCH: "seed", NEON_PROJECT_ID: "p-1" })).toMatchObject({
      production: false,
      parentBranch: "seed",
      neonProjectId: "p-1",
    });
    expect(stageSettings("dev", { ENCLAVE_DB_TOPOLOGY: "single" }).topology).toBe("single");
    expect(() => stageSettings("dev", { ENCLAVE_DB_TOPOLOGY: "sharded" })).toThrow(/per-service, single/);
    expect(stageSettings("pr-3", {}).cronsEnabled).toBe(true);
    expect(stageSettings("pr-3", { ENCLAVE_CRONS: "off" }).cronsEnabled).toBe(false);
    expect(() => stageSettings("pr-3", { ENCLAVE_CRONS: "sometimes" })).toThrow(/on or off/);
  });

  test("preview stages start from a branch without production data, and only an explicit setting copies it", () => {
    expect(stageSettings("pr-3", {})).toMatchObject({ parentBranch: "seed", copyProductionData: false });
    expect(stageSettings("pr-3", { ENCLAVE_PREVIEW_FROM_PRODUCTION: "yes" }).copyProductionData).toBe(true);
    expect(() => stageSettings("pr-3", { ENCLAVE_PREVIEW_FROM_PRODUCTION: "sure" })).toThrow(/yes or no/);
  });

  test("seed sets: development on previews and dev, essential elsewhere, never development on production", () => {
    expect(stageSettings("pr-3", {}).seeds).toEqual(["essential", "development"]);
    expect(stageSettings("dev", {}).seeds).toEqual(["essential", "development"]);
    expect(stageSettings("staging", {}).seeds).toEqual(["essential"]);
    expect(stageSettings("pr-3", { ENCLAVE_SEED: "essential" }).seeds).toEqual(["essential"]);
    expect(stageSettings("staging", { ENCLAVE_SEED: "development" }).seeds).toEqual(["essential", "development"]);
    expect(() => stageSettings("production", { ENCLAVE_SEED: "development" })).toThrow(/refused on production/);
    expect(() => stageSettings("pr-3", { ENCLAVE_SEED: "everything" })).toThrow(/essential or development/);
  });

  test("infra names databases and roles exactly as the migrate function does", () => {
    for (const topology of ["per-service", "single"] as const) {
      const planned = databasePlan(plan.services, { topology, singleDatabase: "enclave" });
      for (const roles of planned) expect(roles).toEqual(serviceRoles(roles.service, { topology, ...(topology === "single" ? { database: "enclave" } : {}) }));
    }
    expect(databasePlan(["auth", "profile"], { topology: "per-service", singleDatabase: "enclave" }).map((r) => r.database)).toEqual(["auth", "profile"]);
    expect(databasePlan(["auth", "profile"], { topology: "single", singleDatabase: "enclave" }).map((r) => r.database)).toEqual(["enclave", "enclave"]);
  });

  test("runtime URLs use Neon's pooled host and require TLS", () => {
    expect(pooledHost("ep-cool-sun-123456.us-east-2.aws.neon.tech")).toBe("ep-cool-sun-123456-pooler.us-east-2.aws.neon.tech");
    expect(pooledHost("ep-cool-sun-123456-pooler.us-east-2.aws.neon.tech")).toBe("ep-cool-sun-123456-pooler.us-east-2.aws.neon.tech");
    expect(postgresUrl({ user: "auth_app", password: "p/w@1", host: "ep-a-1-pooler.x.aws.neon.tech", database: "auth" })).toBe(
      "postgres://auth_app:p%2Fw%401@ep-a-1-pooler.x.aws.neon.tech/auth?sslmode=require",
    );
  });
});

describe("public keys", () => {
  test("the public JWKS is the signing key without its private part", () => {
    const jwk = generatePrivateJwk();
    const jwks = JSON.parse(publicJwks("AuthSigningKey", JSON.stringify(jwk))) as { keys: Record<string, string>[] };
    expect(jwks.keys).toEqual([{ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, kid: jwk.kid, alg: "ES256", use: "sig" }]);
  });

  test("a wrong secret fails the deploy without echoing its value", () => {
    expect(() => publicJwks("AuthSigningKey", "hunter2-not-json")).toThrow(/AuthSigningKey is not JSON/);
    const { kid: _kid, ...withoutKid } = generatePrivateJwk();
    expect(() => publicJwks("AuthSigningKey", JSON.stringify(withoutKid))).toThrow(/with kid, x, y and d/);
    try {
      publicJwks("AuthSigningKey", "hunter2-not-json");
    } catch (error) {
      expect((error as Error).message).not.toContain("hunter2");
    }
  });
});
