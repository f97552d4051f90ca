/// <reference path="./.sst/platform/config.d.ts" />

/**
 * Enclave's cloud deployment (SST on AWS, Neon for PostgreSQL). Resources live in infra/, one
 * concern per file; docs/DEPLOY.md has the commands. Production keeps its resources when
 * removed and refuses accidental removal; every other stage (dev, staging, pr-<n>) is removed
 * entirely, its Neon branch included.
 */
export default $config({
  app(input) {
    const production = input?.stage === "production";
    return {
      name: "enclave",
      removal: production ? "retain" : "remove",
      protect: production,
      home: "aws",
      providers: {
        aws: { region: (process.env.AWS_REGION as aws.Region | undefined) ?? "us-east-1" },
        neon: "0.13.0",
        random: "4.16.6",
      },
    };
  },
  async run() {
    const { deploy } = await import("./infra");
    return deploy();
  },
});
