import { defineManifest } from "@enclave/core/manifest";

export const paymentsManifest = defineManifest({ name: "payments", prefix: "/payments" });
