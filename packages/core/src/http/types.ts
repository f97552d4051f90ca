import type { Database } from "../db/index";

export const roles = ["ADMIN", "CUSTOMER", "VENDOR"] as const;
export type Role = (typeof roles)[number];

/** Who is calling: a signed-in user, or another service of this app. */
export type Principal = { kind: "user"; userId: string; role: Role; tokenId: string } | { kind: "service"; service: string };

export interface AppVariables {
  requestId: string;
  principal: Principal | undefined;
  verifier: TokenVerifier;
}

export interface AppEnv {
  Variables: AppVariables;
}

export interface TokenVerifier {
  /** Returns the principal for a bearer token, or throws AppError("unauthorized"). */
  verify(token: string): Promise<Principal>;
}

export interface ServiceInfo {
  name: string;
  prefix: string;
  version: string;
  /** The service's database, opened lazily on first use. */
  database: () => Promise<Database>;
}

/** What a service's OpenAPI document tells readers about the service as a whole. */
export interface ServiceDocs {
  /** What the service owns and offers (Markdown): the document's `info.description` and its tag's. */
  description: string;
  /** The terms the API is offered under; proprietary unless stated. */
  license?: { name: string; identifier?: string; url?: string };
}
