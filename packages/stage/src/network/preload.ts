import { pathToFileURL } from "node:url";
import type { TwinNetwork } from "../contracts";
import { compileModule } from "../lambda/compile";

/**
 * The `--import` argument that points a function process at the twin's network: its Neon
 * connections to the proxy on `neonProxyPort`, its `fetch` calls to `apiOrigins` to the local gateway.
 */
export async function twinPreloadImport(network: TwinNetwork): Promise<string> {
  const file = await compileModule(new URL("./twin-preload.ts", import.meta.url));
  const settings = new URLSearchParams({ port: String(network.neonProxyPort) });
  if (network.apiOrigins && Object.keys(network.apiOrigins).length > 0) settings.set("api", JSON.stringify(network.apiOrigins));
  return `${pathToFileURL(file).href}?${settings}`;
}
