import { eventBridgeHandler } from "@enclave/core/lambda";
import { profileService } from "@enclave/profile";

export const handler = eventBridgeHandler("profile.on-user-registered", async () => {
  const { profileContext } = await import("@enclave/profile/lambda");
  return profileService.consumers["on-user-registered"]!(profileContext);
});
