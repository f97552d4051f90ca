import { defineManifest } from "@enclave/core/manifest";

export const adminManifest = defineManifest({ name: "admin", prefix: "/admin" });
