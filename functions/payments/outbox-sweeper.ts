import { scheduledHandler } from "@enclave/core/lambda";
import { paymentsService } from "@enclave/payments";

export const handler = scheduledHandler("payments.outbox-sweeper", async () => {
  const { paymentsContext } = await import("@enclave/payments/lambda");
  return paymentsService.crons["outbox-sweeper"]!(paymentsContext);
});
