import type { EventBridgeClient, PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import { type BusEntry, chunk, type EventBus, PUT_EVENTS_MAX_ENTRIES, type PublishResult } from "./bus";

export interface EventBridgeBusOptions {
  busName: string;
  /** A local endpoint (tests, local emulators); the real service otherwise. */
  endpoint?: string;
  region?: string;
  /** Attempts for entries that failed (a partial failure is HTTP 200 with FailedEntryCount > 0). */
  maxAttempts?: number;
  /** Test seam: a ready client. */
  client?: EventBridgeClient;
}

/**
 * Publishes with PutEvents: at most 10 entries a call; after a partial failure only the failed
 * entries are sent again. The SDK (~470 KB) is imported on first publish, not at cold start.
 */
type EventBridgeSdk = typeof import("@aws-sdk/client-eventbridge");

/**
 * The SDK's named exports however it was bundled. An ESM bundle that resolves the package to
 * its CommonJS build turns `import()` into a chunk whose only export is `default` (the
 * `module.exports` object); Node and a bundle of the ESM build give named exports.
 */
export function namedExports(module: EventBridgeSdk | { default: EventBridgeSdk }): EventBridgeSdk {
  if ("EventBridgeClient" in module && typeof module.EventBridgeClient === "function") return module;
  const commonJs = (module as { default?: EventBridgeSdk }).default;
  if (commonJs && typeof commonJs.EventBridgeClient === "function") return commonJs;
  throw new Error("@aws-sdk/client-eventbridge has no EventBridgeClient export in this build");
}

export function eventBridgeBus(options: EventBridgeBusOptions): EventBus {
  let loaded: Promise<{ client: EventBridgeClient; PutEventsCommand: typeof import("@aws-sdk/client-eventbridge").PutEventsCommand }> | undefined;
  const load = () => {
    loaded ??= import("@aws-sdk/client-eventbridge").then(namedExports).then((sdk) => ({
      client:
        options.client ??
        new sdk.EventBridgeClient({
          ...(options.region ? { region: options.region } : {}),
          ...(options.endpoint ? { endpoint: options.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } } : {}),
        }),
      PutEventsCommand: sdk.PutEventsCommand,
    }));
    return loaded;
  };
  const maxAttempts = options.maxAttempts ?? 3;

  return {
    async publish(entries: BusEntry[]): Promise<PublishResult> {
      if (entries.length === 0) return { failed: [] };
      const { client, PutEventsCommand } = await load();
      const failed: PublishResult["failed"] = [];
      for (const batch of chunk(entries, PUT_EVENTS_MAX_ENTRIES)) {
        let pending = batch;
        let lastErrors = new Map<string, string>();
        for (let attempt = 1; attempt <= maxAttempts && pending.length > 0; attempt++) {
          if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
          const request: PutEventsRequestEntry[] = pending.map((entry) => ({
            Source: entry.source,
            DetailType: entry.detailType,
            Detail: JSON.stringify(entry.detail),
            EventBusName: options.busName,
            Time: new Date(entry.detail.occurredAt),
          }));
          try {
            const response = await client.send(new PutEventsCommand({ Entries: request }));
            const results = response.Entries ?? [];
            lastErrors = new Map();
            const retry: BusEntry[] = [];
            pending.forEach((entry, index) => {
              const result = results[index];
              if (!result || result.ErrorCode || !result.EventId) {
                retry.push(entry);
                lastErrors.set(entry.detail.id, `${result?.ErrorCode ?? "NoResult"}: ${result?.ErrorMessage ?? "no entry result"}`);
              }
            });
            pending = retry;
          } catch (error) {
            lastErrors = new Map(pending.map((entry) => [entry.detail.id, (error as Error).name || "PutEventsError"]));
          }
        }
        for (const entry of pending) failed.push({ id: entry.detail.id, error: lastErrors.get(entry.detail.id) ?? "unknown" });
      }
      return { failed };
    },
  };
}
