import { scheduledHandler } from "@enclave/core/lambda";
import { paymentsService } from "@enclave/payments";

export const handler = scheduledHandler("payments.idempotency-expiry", async () => {
  const { paymentsContext } = await import("@enclave/payments/lambda");
  return paymentsService.crons["idempotency-expiry"]!(paymentsContext);
});
