import createClient, { type ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema";

/**
 * A typed client for the whole Enclave API, generated from the services' OpenAPI documents:
 *
 *   const api = createEnclaveClient("http://localhost:3000");
 *   const { data } = await api.POST("/auth/register", { body: { email, password, name } });
 *   const me = await api.GET("/auth/me", { headers: { authorization: `Bearer ${data?.accessToken}` } });
 *
 * Every path, parameter, body and response is typed; an error answer arrives as `error` in the
 * API.md shape (`{ error: { code, message, details? } }`).
 */
export function createEnclaveClient(baseUrl: string, options: Omit<ClientOptions, "baseUrl"> = {}) {
  return createClient<paths>({ ...options, baseUrl });
}

export type EnclaveClient = ReturnType<typeof createEnclaveClient>;
/** The API's named schemas: `Schemas["Payment"]`, `Schemas["User"]`, … */
export type Schemas = components["schemas"];
export type { components, operations, paths } from "./schema";
