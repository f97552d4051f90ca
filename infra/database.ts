import { databasePlan, pooledHost, postgresUrl } from "./database-plan";
import type { Secrets } from "./secrets";
import type { StageSettings } from "./stage";

/**
 * The stage's Neon database: one Neon project for the app (created once, its id in
 * NEON_PROJECT_ID). Production uses the project's default branch; every other stage gets its own
 * branch of the parent (NEON_PARENT_BRANCH, default `seed`) with its own compute, both deleted
 * when the stage is removed. A branch starts as a copy of its parent's data, roles and
 * databases: the parent must hold no production data (a schema-only branch, or staging), and
 * production's own branch is refused unless ENCLAVE_PREVIEW_FROM_PRODUCTION=yes.
 *
 * Databases and roles inside the branch are created in SQL by the migrate function (Neon's API
 * makes every role it creates a member of neon_superuser): here only the URLs are computed,
 * with a generated password per service's runtime role.
 */
export function createDatabase(settings: StageSettings, services: string[], secrets: Secrets) {
  if (!settings.neonProjectId) {
    throw new Error("NEON_PROJECT_ID is not set: create the project once (docs/DEPLOY.md) and export its id before deploying");
  }
  const projectId = settings.neonProjectId;
  const provider = new neon.Provider("Neon", { apiKey: secrets.NeonApiKey.value });
  const project = neon.getProjectOutput({ id: projectId }, { provider });

  let branchId: $util.Output<string>;
  let host: $util.Output<string>;
  if (settings.production) {
    branchId = project.defaultBranchId;
    host = project.databaseHost;
  } else {
    const parentId = $resolve({ branches: neon.getBranchesOutput({ projectId }, { provider }).branches, defaultBranchId: project.defaultBranchId }).apply(
      ({ branches, defaultBranchId }) => {
        const parent = branches.find((b) => b.name === settings.parentBranch);
        if (!parent) {
          throw new Error(
            `Neon branch "${settings.parentBranch}" (NEON_PARENT_BRANCH) is not a branch of project ${projectId}: create it once without production data (docs/DEPLOY.md, "Preview data")`,
          );
        }
        if ((parent.id === defaultBranchId || parent.primary) && !settings.copyProductionData) {
          throw new Error(
            `stage ${settings.stage} would branch from production's branch "${parent.name}" and copy its personal data: set NEON_PARENT_BRANCH to a branch without it, or ENCLAVE_PREVIEW_FROM_PRODUCTION=yes to copy it deliberately`,
          );
        }
        return parent.id;
      },
    );
    const branch = new neon.Branch("DatabaseBranch", { projectId, parentId, name: settings.stage }, { provider });
    const endpoint = new neon.Endpoint(
      "DatabaseEndpoint",
      {
        projectId,
        branchId: branch.id,
        type: "read_write",
        autoscalingLimitMinCu: settings.computeUnits.min,
        autoscalingLimitMaxCu: settings.computeUnits.max,
        suspendTimeoutSeconds: settings.suspendSeconds,
      },
      { provider },
    );
    branchId = branch.id;
    host = endpoint.host;
  }

  // The branch's default owner (created with the project, present on every branch) runs the
  // migrations: it may create roles and databases.
  const adminPassword = neon.getBranchRolePasswordOutput({ projectId, branchId, roleName: project.databaseUser }, { provider }).password;
  const adminUrl = $resolve([project.databaseUser, adminPassword, host, project.databaseName]).apply(([user, password, h, database]) =>
    postgresUrl({ user, password, host: h, database }),
  );

  const serviceDatabases = databasePlan(services, settings).map((roles) => {
    const password = new random.RandomPassword(`${roles.service[0]!.toUpperCase()}${roles.service.slice(1)}RuntimePassword`, {
      length: 40,
      special: false,
    });
    const url = $resolve([password.result, host]).apply(([p, h]) =>
      postgresUrl({ user: roles.runtime, password: p, host: pooledHost(h), database: roles.database }),
    );
    return { roles, password: $util.secret(password.result), url: $util.secret(url) };
  });

  return {
    projectId,
    branchId,
    host,
    adminUrl: $util.secret(adminUrl),
    services: Object.fromEntries(serviceDatabases.map((s) => [s.roles.service, s])),
  };
}

export type StageDatabase = ReturnType<typeof createDatabase>;
