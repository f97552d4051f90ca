import { adminContextFromConfig, adminService } from "@enclave/admin";
import { readAdminConfig } from "@enclave/admin/config";
import { authContextFromConfig, authService } from "@enclave/auth";
import { readAuthConfig } from "@enclave/auth/config";
import { profileContextFromConfig, profileService } from "@enclave/profile";
import { readProfileConfig } from "@enclave/profile/config";
import { localService } from "./registry";

/** Every service the local runtime serves, in start-up order. Add a service here to run it locally. */
export const localServices = [
  localService({
    module: authService,
    context: (local) => authContextFromConfig(readAuthConfig(local.env), { database: local.base.database, bus: local.base.bus, verifier: local.base.verifier }),
  }),
  localService({
    module: adminService,
    context: (local) =>
      adminContextFromConfig(readAdminConfig(local.env), { database: local.base.database, bus: local.base.bus, verifier: local.base.verifier }),
  }),
  localService({
    module: profileService,
    context: (local) =>
      profileContextFromConfig(readProfileConfig(local.env), { database: local.base.database, bus: local.base.bus, verifier: local.base.verifier }),
  }),
];
