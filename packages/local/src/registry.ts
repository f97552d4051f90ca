import type { ServiceContext, ServiceModule } from "@enclave/core";
import type { JWK } from "jose";

/** What the local runtime hands each service to build its context from. */
export interface LocalContextBase {
  /** Database (PGlite under DATA_DIR, or the service's URL), local bus, token verifier. */
  base: ServiceContext;
  /** `DATA_DIR/<stage>`: where local state (databases, keys, bus) lives. */
  stageDir: string;
  /** The process environment plus what the runtime resolved: `<SERVICE>_DATABASE_URL`, `AUTH_SIGNING_KEY`. */
  env: Record<string, string | undefined>;
  /** The ES256 private JWK that signs access tokens locally (kept in stageDir/auth-signing-key.json). */
  signingJwk: JWK;
  /**
   * The ES256 private JWK that services sign their short-lived service tokens with when calling
   * another service (kept in stageDir/service-signing-key.json).
   */
  serviceSigningJwk: JWK;
  /** Calls another service in-process, exactly as over HTTP (`fetch(new Request("http://local/auth/..."))`). */
  fetch: (request: Request) => Promise<Response>;
}

/** A service as the local runtime runs it: its module and how to build its context. */
export interface LocalService<C extends ServiceContext = ServiceContext> {
  module: ServiceModule<C>;
  context(local: LocalContextBase): Promise<C> | C;
}

export function localService<C extends ServiceContext>(service: LocalService<C>): LocalService {
  return service as unknown as LocalService;
}
