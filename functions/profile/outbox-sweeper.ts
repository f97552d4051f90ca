import { scheduledHandler } from "@enclave/core/lambda";
import { profileService } from "@enclave/profile";

export const handler = scheduledHandler("profile.outbox-sweeper", async () => {
  const { profileContext } = await import("@enclave/profile/lambda");
  return profileService.crons["outbox-sweeper"]!(profileContext);
});
