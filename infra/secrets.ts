import type { StageSettings } from "./stage";

/**
 * Secrets, set per stage with `sst secret set <Name> <value> --stage <stage>` (or once for every
 * stage without its own value with `--fallback`). Their values never appear in the repository
 * or in code; functions receive them as environment variables of their own configuration.
 */
export function createSecrets(settings: Pick<StageSettings, "seeds">) {
  return {
    /** ES256 private JWK (JSON, with kid) that auth signs access tokens with. */
    AuthSigningKey: new sst.Secret("AuthSigningKey"),
    /** ES256 private JWK (JSON, with kid) that services sign their calls to other services with. */
    ServiceSigningKey: new sst.Secret("ServiceSigningKey"),
    /** Neon API key: creates and deletes each stage's branch and compute. */
    NeonApiKey: new sst.Secret("NeonApiKey"),
    /**
     * The password of the staging seed set's accounts (12+ characters). Declared only on a stage
     * that applies that set (ENCLAVE_SEED=staging), where a deploy without it stops and names it.
     */
    StagingSeedPassword: settings.seeds.includes("staging") ? new sst.Secret("StagingSeedPassword") : undefined,
  };
}

export type Secrets = ReturnType<typeof createSecrets>;
