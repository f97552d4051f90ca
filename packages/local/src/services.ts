import { adminContextFromConfig, adminService } from "@enclave/admin";
import { readAdminConfig } from "@enclave/admin/config";
import { authContextFromConfig, authService } from "@enclave/auth";
import { readAuthConfig } from "@enclave/auth/config";
import { paymentsContextFromConfig, paymentsService } from "@enclave/payments";
import { readPaymentsConfig } from "@enclave/payments/config";
import { profileContextFromConfig, profileService } from "@enclave/profile";
import { readProfileConfig } from "@enclave/profile/config";
import { localService } from "./registry";

/** Every service the local runtime serves, in start-up order. Add a service here to run it locally. */
export const localServices = [
  localService({ module: authService, context: (local) => authContextFromConfig(readAuthConfig(local.env), local.overrides) }),
  localService({ module: adminService, context: (local) => adminContextFromConfig(readAdminConfig(local.env), local.overrides) }),
  localService({ module: profileService, context: (local) => profileContextFromConfig(readProfileConfig(local.env), local.overrides) }),
  localService({
    module: paymentsService,
    context: (local) =>
      // Recipient lookups reach auth in-process, exactly as over HTTP, with a service token.
      paymentsContextFromConfig(readPaymentsConfig(local.env), { ...local.overrides, authFetch: local.fetch }),
  }),
];
