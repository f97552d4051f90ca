import { adminManifest } from "@enclave/admin/manifest";
import { authManifest } from "@enclave/auth/manifest";
import { paymentsManifest } from "@enclave/payments/manifest";
import { profileManifest } from "@enclave/profile/manifest";
import type { ServiceDeployment } from "./plan";

/**
 * Every deployed service, one line each: its manifest (name, routes prefix) and
 * what its functions need beyond the defaults. Adding a service is adding its line here; the API
 * routes, database and roles follow from it, and its functions, rules and crons from its jobs.ts.
 *
 * Auth's API hashes passwords with scrypt (N = 2^17, r = 8: 128 MiB and about 0.4 s of one
 * vCPU per hash). Lambda gives one full vCPU at 1769 MB; at the default 1024 MB a login would
 * take about 0.7 s, and since cost is GB-seconds the faster, larger function costs about the
 * same per login.
 */
export const deployedServices: ServiceDeployment[] = [
  { manifest: authManifest, secrets: ["AuthSigningKey"], api: { memory: "1769 MB" } },
  { manifest: profileManifest },
  { manifest: paymentsManifest, secrets: ["ServiceSigningKey"], apiUrlAs: ["AUTH_URL"] },
  { manifest: adminManifest },
];
