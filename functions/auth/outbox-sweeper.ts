import { authService } from "@enclave/auth";
import { scheduledHandler } from "@enclave/core/lambda";

export const handler = scheduledHandler("auth.outbox-sweeper", async () => {
  const { authContext } = await import("@enclave/auth/lambda");
  return authService.crons["outbox-sweeper"]!(authContext);
});
