import type { Hono } from "hono";
import * as z from "zod/mini";
import { ConfigError, databaseUrlFor, parseEnv, stageSchema } from "./config";
import { type Database, driverFor, openDatabase } from "./db/index";
import type { EventBus } from "./events/bus";
import type { EventType } from "./events/catalog";
import { APP, type EventEnvelope } from "./events/envelope";
import { eventBridgeBus } from "./events/eventbridge";
import type { EventPattern } from "./events/pattern";
import { sweepOutbox } from "./events/relay";
import type { OutboxTable } from "./events/tables";
import { createTokenVerifier } from "./http/auth";
import type { AppEnv, TokenVerifier } from "./http/types";
import { configureLog } from "./log";

/**
 * What a service declares about itself, with no runtime code: read by the local runtime and
 * by infra (routes, EventBridge rules, crons), so both come from one source of truth.
 */
export interface Manifest {
  name: string;
  /** API Gateway path prefix, e.g. `/auth`. */
  prefix: string;
  publishes: EventType[];
  /** `name` is also the Lambda entry: `functions/<service>/<name>.ts`. */
  subscriptions: { name: string; description: string; pattern: EventPattern }[];
  /** `schedule` is an EventBridge schedule expression; the local runtime runs it on a timer. */
  crons: { name: string; description: string; schedule: `rate(${string})` | `cron(${string})` }[];
}

export function defineManifest<const M extends Manifest>(manifest: M): M {
  return manifest;
}

/** Seconds between runs of a `rate(...)` schedule (what the local runtime's timers use). */
export function rateSeconds(schedule: string): number {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)$/.exec(schedule);
  if (!match) throw new Error(`unsupported schedule ${schedule}`);
  const unit = match[2]?.startsWith("hour") ? 3600 : match[2]?.startsWith("minute") ? 60 : 1;
  return Number(match[1]) * unit;
}

export type SeedSet = "essential" | "development" | "staging" | "production";
export interface SeedOptions {
  /** Password of the development administrator (SEED_ADMIN_PASSWORD). */
  adminPassword: string;
}

/** What every service's code runs against; the Lambda wiring and the local runtime build it. */
export interface ServiceContext {
  app: string;
  stage: string;
  database(): Promise<Database>;
  bus: EventBus;
  verifier: TokenVerifier;
}

export interface DeliveryInfo {
  /** 1 on first delivery. */
  attempt: number;
}

export type EventHandler = (event: EventEnvelope, delivery: DeliveryInfo) => Promise<void>;

/** A service's runtime side: its app, consumers and crons, each built from a context. */
export interface ServiceModule<C extends ServiceContext = ServiceContext> {
  manifest: Manifest;
  outbox: OutboxTable;
  createApp(context: C): Hono<AppEnv>;
  consumers: Record<string, (context: C) => EventHandler>;
  crons: Record<string, (context: C) => () => Promise<unknown>>;
  seeds: Partial<Record<SeedSet, (context: C, options: SeedOptions) => Promise<void>>>;
}

/** The outbox sweeper every service runs as a cron. */
export function outboxSweeper(outbox: OutboxTable) {
  return (context: ServiceContext) => async () => sweepOutbox((await context.database()).db, { outbox, bus: context.bus });
}

/** A JWKS document whose keys carry no private or symmetric key material. */
function isPublicJwks(value: string): boolean {
  try {
    const doc = JSON.parse(value) as { keys?: unknown };
    return (
      Array.isArray(doc?.keys) &&
      doc.keys.length > 0 &&
      doc.keys.every((key) => key !== null && typeof key === "object" && typeof key.kty === "string" && !("d" in key) && !("k" in key))
    );
  } catch {
    return false;
  }
}

const commonEnv = z.object({
  STAGE: z._default(stageSchema, "local"),
  LOG_LEVEL: z._default(z.enum(["debug", "info", "warn", "error"]), "info"),
  EVENT_BUS_NAME: z._default(z.string().check(z.minLength(1)), "default"),
  EVENT_BUS_ENDPOINT: z.optional(z.url()),
  AWS_REGION: z.optional(z.string()),
  JWT_ISSUER: z._default(z.string().check(z.minLength(1)), "enclave-auth"),
  JWT_AUDIENCE: z._default(z.string().check(z.minLength(1)), "enclave"),
  /** The auth service's public keys: a JWKS URL, or the JWKS document itself. */
  AUTH_JWKS_URL: z.optional(z.url()),
  AUTH_PUBLIC_JWKS: z.optional(z.string().check(z.refine(isPublicJwks, 'must be a JWKS document ({"keys": [...]}) of public keys only'))),
  DB_MAX_CONNECTIONS: z._default(z.coerce.number().check(z.int(), z.positive()), 1),
  NEON_WS_PROXY: z.optional(z.string()),
});
export type CommonConfig = z.output<typeof commonEnv> & { databaseUrl: string };

/** Parses the variables every service reads; each service's config.ts calls this with process.env. */
export function parseCommonConfig(service: string, env: Record<string, string | undefined>): CommonConfig {
  // Every problem at once, so one failed start-up shows everything to fix.
  const problems: string[] = [];
  let common: z.output<typeof commonEnv> | undefined;
  try {
    common = parseEnv(commonEnv, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const serviceVariable = `${service.toUpperCase()}_DATABASE_URL`;
  const databaseUrl = databaseUrlFor(service, env);
  if (!databaseUrl) {
    problems.push(`${serviceVariable} (or DATABASE_URL) is required`);
  } else {
    try {
      driverFor(databaseUrl);
    } catch {
      // Never echo the URL: it may carry a password.
      problems.push(`${env[serviceVariable] ? serviceVariable : "DATABASE_URL"}: must be pglite://memory, pglite://<dir>, postgres://… or a Neon URL`);
    }
  }
  if (problems.length > 0 || !common || !databaseUrl) throw new ConfigError(problems);
  return { ...common, databaseUrl };
}

/** A context from configuration: what each Lambda builds at cold start (nothing connects yet). */
export function contextFromConfig(config: CommonConfig, overrides: Partial<ServiceContext> = {}): ServiceContext {
  configureLog({ level: config.LOG_LEVEL });
  let database: Promise<Database> | undefined;
  const verifier =
    overrides.verifier ??
    createTokenVerifier({
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      jwks: config.AUTH_PUBLIC_JWKS ? JSON.parse(config.AUTH_PUBLIC_JWKS) : new URL(config.AUTH_JWKS_URL ?? "http://localhost:3000/auth/.well-known/jwks.json"),
    });
  return {
    app: APP,
    stage: config.STAGE,
    database: () => {
      database ??= openDatabase(config.databaseUrl, {
        maxConnections: config.DB_MAX_CONNECTIONS,
        ...(config.NEON_WS_PROXY ? { neonWsProxy: config.NEON_WS_PROXY } : {}),
      }).catch((error) => {
        database = undefined;
        throw error;
      });
      return database;
    },
    bus:
      overrides.bus ??
      eventBridgeBus({
        busName: config.EVENT_BUS_NAME,
        ...(config.EVENT_BUS_ENDPOINT ? { endpoint: config.EVENT_BUS_ENDPOINT } : {}),
        ...(config.AWS_REGION ? { region: config.AWS_REGION } : {}),
      }),
    verifier,
    ...overrides,
  };
}
