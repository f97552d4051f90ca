/**
 * What the events page's tests share: auth, profile and admin as `npm run dev` wires them (the
 * profile consumer behind a switch that makes it fail), on one shared database so a runtime
 * starts in seconds, and registration of users with a known request id.
 */
import type { Subscription } from "@enclave/core";
import type { LocalService } from "./registry";
import { localServices } from "./services";

export const PROFILE_CONSUMER = "profile.on-user-registered";
export const AUDIT_CONSUMER = "admin.audit";

/** While `failing`, the profile consumer throws before doing anything. */
export interface ConsumerProbe {
  failing: boolean;
}

export function servicesWithProbe(probe: ConsumerProbe): LocalService[] {
  return localServices
    .filter((s) => ["auth", "profile", "admin"].includes(s.module.manifest.name))
    .map((service) => {
      if (service.module.manifest.name !== "profile") return service;
      const real = service.module.jobs["on-user-registered"] as Subscription;
      const probed: Subscription = {
        ...real,
        handle: async (context, event, delivery) => {
          if (probe.failing) throw new Error("profile store unavailable");
          await real.handle(context, event, delivery);
        },
      };
      return { ...service, module: { ...service.module, jobs: { ...service.module.jobs, "on-user-registered": probed } } };
    });
}

let counter = 0;

/** Registers a user through `fetch` (in-process or over HTTP); the request id becomes the events' correlation id. */
export async function registerUser(fetch: (path: string, init: RequestInit) => Response | Promise<Response>, name = "Events User") {
  counter++;
  const requestId = `events-page-${counter}-${Date.now()}`;
  const response = await fetch("/auth/register", {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": requestId },
    body: JSON.stringify({ email: `${requestId}@example.com`, password: "correct horse battery", name }),
  });
  const body = (await response.json()) as { user?: { id: string } };
  if (response.status !== 201 || !body.user) throw new Error(`registration failed: ${response.status} ${JSON.stringify(body)}`);
  return { userId: body.user.id, requestId };
}
