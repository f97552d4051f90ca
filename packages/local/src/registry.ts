import type { ContextOverrides, ServiceContext, ServiceModule } from "@enclave/core";

/** What the local runtime hands each service to build its context from. */
export interface LocalContextBase {
  /** The process environment plus what the runtime resolved: `<SERVICE>_DATABASE_URL`, the stage's keys. */
  env: Record<string, string | undefined>;
  /** The service's database (PGlite under DATA_DIR, or its URL) and the local bus. */
  overrides: Required<Pick<ContextOverrides, "database" | "bus">>;
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
