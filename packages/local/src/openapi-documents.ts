import { type AnyRouteSpec, memoryBus, routeSpecsOf } from "@enclave/core";
import { generatePrivateJwk, publicJwksJson } from "@enclave/core/keys";
import { localServices } from "./services";

export interface ServiceDocument {
  service: string;
  prefix: string;
  document: Record<string, unknown>;
  /** The routes the document describes, with the zod schemas that validate their input. */
  specs: readonly AnyRouteSpec[];
}

/**
 * Every service's OpenAPI document as its app serves it, built in-process from throwaway keys
 * and a database that is never opened: documenting the API needs no running infrastructure.
 */
export async function openApiDocuments(): Promise<ServiceDocument[]> {
  const signingJwk = generatePrivateJwk();
  const serviceJwk = generatePrivateJwk();
  const env: Record<string, string | undefined> = {
    STAGE: "docs",
    LOG_LEVEL: "error",
    // Parsed by the configuration, never connected to: the database override below is used instead.
    DATABASE_URL: "pglite://memory",
    AUTH_SIGNING_KEY: JSON.stringify(signingJwk),
    AUTH_PUBLIC_JWKS: publicJwksJson(signingJwk),
    SERVICE_SIGNING_KEY: JSON.stringify(serviceJwk),
    SERVICE_PUBLIC_JWKS: publicJwksJson(serviceJwk),
  };
  const neverOpened = () => Promise.reject(new Error("building the API documents needs no database"));
  const documents: ServiceDocument[] = [];
  for (const { module, context } of localServices) {
    const app = module.createApp(
      await context({
        env,
        overrides: { database: neverOpened, bus: memoryBus() },
        fetch: () => Promise.reject(new Error("building the API documents calls no service")),
      }),
    );
    const { prefix, name } = module.manifest;
    const response = await app.request(`${prefix}/openapi.json`);
    if (response.status !== 200) throw new Error(`GET ${prefix}/openapi.json answered ${response.status}: ${await response.text()}`);
    documents.push({ service: name, prefix, document: (await response.json()) as Record<string, unknown>, specs: routeSpecsOf(app) });
  }
  return documents;
}
