import { defineManifest } from "@enclave/core/manifest";

export const profileManifest = defineManifest({ name: "profile", prefix: "/profiles" });
