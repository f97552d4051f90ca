/**
 * Secrets, set per stage with `sst secret set <Name> <value> --stage <stage>` (or once for every
 * stage without its own value with `--fallback`). Their values never appear in the repository
 * or in code; functions receive them as environment variables of their own configuration.
 */
export function createSecrets() {
  return {
    /** ES256 private JWK (JSON, with kid) that auth signs access tokens with. */
    AuthSigningKey: new sst.Secret("AuthSigningKey"),
    /** ES256 private JWK (JSON, with kid) that services sign their calls to other services with. */
    ServiceSigningKey: new sst.Secret("ServiceSigningKey"),
    /** Neon API key: creates and deletes each stage's branch and compute. */
    NeonApiKey: new sst.Secret("NeonApiKey"),
  };
}

export type Secrets = ReturnType<typeof createSecrets>;
