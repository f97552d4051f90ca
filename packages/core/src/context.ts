import type { JSONWebKeySet } from "jose";
import type { CommonConfig } from "./config";
import { type Database, openDatabase } from "./db/index";
import type { EventBus } from "./events/bus";
import { eventBridgeBus } from "./events/eventbridge";
import { type ServiceEvents, serviceEvents } from "./events/publisher";
import type { InboxTable, OutboxTable } from "./events/tables";
import { createTokenVerifier } from "./http/auth";
import { createServiceTokenVerifier } from "./http/service-token";
import type { TokenVerifier } from "./http/types";
import { configureLog } from "./log";
import { APP, eventSource } from "./manifest";

/** What every service's code runs against; the Lambda entry points and the local runtime build it. */
export interface ServiceContext {
  app: string;
  /** The service's name (its manifest's). */
  service: string;
  stage: string;
  database(): Promise<Database>;
  bus: EventBus;
  /** The service's events: commit with a change, publish, sweep (source, outbox and bus bound once). */
  events: ServiceEvents;
  verifier: TokenVerifier;
}

export interface ContextOptions {
  /** The service's outbox table: where `events.commit` writes. */
  outbox: OutboxTable;
  /** The service's inbox table, where it has subscribers: the kernel's retention prunes it. */
  inbox?: InboxTable | undefined;
  /** The keys user tokens are checked with, instead of AUTH_PUBLIC_JWKS (auth uses its own key). */
  userKeys?: JSONWebKeySet | undefined;
  database?: ServiceContext["database"] | undefined;
  bus?: EventBus | undefined;
  verifier?: TokenVerifier | undefined;
}

/** What a caller (the local runtime, a test) may put in place of what configuration would build. */
export type ContextOverrides = Pick<ContextOptions, "database" | "bus" | "verifier">;

/**
 * The token verifier of a service, the same in the cloud and locally: users' access tokens
 * against the auth keys, and, where SERVICE_PUBLIC_JWKS is set, service tokens addressed to
 * this service by name.
 */
export function verifierFromConfig(config: CommonConfig, userKeys?: JSONWebKeySet, tenant?: string): TokenVerifier {
  const serviceTokens = config.SERVICE_PUBLIC_JWKS
    ? createServiceTokenVerifier({ audience: config.service, jwks: JSON.parse(config.SERVICE_PUBLIC_JWKS) })
    : undefined;
  return createTokenVerifier({
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    jwks:
      userKeys ??
      (config.AUTH_PUBLIC_JWKS ? JSON.parse(config.AUTH_PUBLIC_JWKS) : new URL(config.AUTH_JWKS_URL ?? "http://localhost:3000/auth/.well-known/jwks.json")),
    ...(serviceTokens ? { serviceTokens } : {}),
    ...(tenant ? { tenant } : {}),
  });
}

/** A context from configuration: what each Lambda builds at cold start (nothing connects yet). */
export function contextFromConfig(config: CommonConfig, options: ContextOptions): ServiceContext {
  configureLog({ level: config.LOG_LEVEL });
  let opened: Promise<Database> | undefined;
  const database =
    options.database ??
    (() => {
      opened ??= openDatabase(config.databaseUrl, {
        maxConnections: config.DB_MAX_CONNECTIONS,
        queryTimeoutMs: config.DB_QUERY_TIMEOUT_MS,
        ...(config.NEON_WS_PROXY ? { neonWsProxy: config.NEON_WS_PROXY } : {}),
      }).catch((error) => {
        opened = undefined;
        throw error;
      });
      return opened;
    });
  const bus =
    options.bus ??
    eventBridgeBus({
      busName: config.EVENT_BUS_NAME,
      ...(config.EVENT_BUS_ENDPOINT ? { endpoint: config.EVENT_BUS_ENDPOINT } : {}),
      ...(config.AWS_REGION ? { region: config.AWS_REGION } : {}),
    });
  return {
    app: APP,
    service: config.service,
    stage: config.STAGE,
    database,
    bus,
    events: serviceEvents(config.service, eventSource(APP, config.service), options.outbox, bus, options.inbox),
    verifier: options.verifier ?? verifierFromConfig(config, options.userKeys),
  };
}
