import { type ContextOverrides, contextFromConfig, type ServiceContext } from "@enclave/core";
import { createServiceTokenSigner } from "@enclave/core/http/service-token";
import { parsePrivateJwk } from "@enclave/core/keys";
import { createAuthClient, type Fetch, type UserDirectory } from "./auth-client";
import type { PaymentsConfig } from "./config";
import { paymentsManifest } from "./manifest";
import { paymentsInbox, paymentsOutbox } from "./payments.sql";
import { type PaymentProvider, providerFor } from "./provider";

export interface ProcessingSettings {
  /** Payments a `due` run takes at most. */
  batchSize: number;
  /** A payment `processing` for longer than this is retried by the `due` cron (a crash or a provider outage left it). */
  leaseMs: number;
  /** An instant payment the payment.created consumer has not processed after this long is taken by the `due` cron. */
  instantGraceMs: number;
}

export interface PaymentsContext extends ServiceContext {
  /** Auth's users, looked up over HTTP with this service's identity. */
  users: UserDirectory;
  provider: PaymentProvider;
  /** The clock of every write and every due check (tests move it). */
  now(): Date;
  processing: ProcessingSettings;
  /** How long idempotency keys are kept at least (24 hours). */
  idempotencyTtlMs: number;
}

export const defaultProcessing: ProcessingSettings = { batchSize: 50, leaseMs: 5 * 60_000, instantGraceMs: 2 * 60_000 };
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000;

export type PaymentsOverrides = ContextOverrides &
  Partial<Omit<PaymentsContext, keyof ServiceContext>> & {
    /** Transport to auth (the local runtime passes its in-process fetch). */
    authFetch?: Fetch;
  };

/** The payments context of a deployed function: configuration in, nothing connected yet. */
export function paymentsContextFromConfig(config: PaymentsConfig, overrides: PaymentsOverrides = {}): PaymentsContext {
  const { authFetch, database, bus, verifier, ...rest } = overrides;
  const base = contextFromConfig(config, { outbox: paymentsOutbox, inbox: paymentsInbox, database, bus, verifier });
  const signer = createServiceTokenSigner({ service: paymentsManifest.name, privateJwk: parsePrivateJwk("SERVICE_SIGNING_KEY", config.SERVICE_SIGNING_KEY) });
  return {
    ...base,
    users: createAuthClient({ baseUrl: config.AUTH_URL, signer, timeoutMs: config.AUTH_TIMEOUT_MS, ...(authFetch ? { fetch: authFetch } : {}) }),
    provider: providerFor(config.PAYMENT_PROVIDER),
    now: () => new Date(),
    processing: defaultProcessing,
    idempotencyTtlMs: IDEMPOTENCY_TTL_MS,
    ...rest,
  };
}
