import { authService } from "@enclave/auth";
import { scheduledHandler } from "@enclave/core/lambda";

export const handler = scheduledHandler("auth.prune-login-attempts", async () => {
  const { authContext } = await import("@enclave/auth/lambda");
  return authService.crons["prune-login-attempts"]!(authContext);
});
