import { defineManifest } from "@enclave/core/manifest";

export const authManifest = defineManifest({ name: "auth", prefix: "/auth" });
