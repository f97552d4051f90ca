import { adminService } from "@enclave/admin";
import { scheduledHandler } from "@enclave/core/lambda";

export const handler = scheduledHandler("admin.outbox-sweeper", async () => {
  const { adminContext } = await import("@enclave/admin/lambda");
  return adminService.crons["outbox-sweeper"]!(adminContext);
});
