import { eventBridgeHandler } from "@enclave/core/lambda";
import { paymentsService } from "@enclave/payments";

export const handler = eventBridgeHandler("payments.process", async () => {
  const { paymentsContext } = await import("@enclave/payments/lambda");
  return paymentsService.consumers.process!(paymentsContext);
});
