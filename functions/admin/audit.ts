import { adminService } from "@enclave/admin";
import { eventBridgeHandler } from "@enclave/core/lambda";

export const handler = eventBridgeHandler("admin.audit", async () => {
  const { adminContext } = await import("@enclave/admin/lambda");
  return adminService.consumers.audit!(adminContext);
});
