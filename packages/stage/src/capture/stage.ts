import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generatePrivateJwk } from "@enclave/core/keys";
import { type Capture, type CaptureOptions, captureStage } from "./capture";
import { type StageModel, stageModel } from "./model";

export interface StageRequest {
  stage: string;
  topology?: "per-service" | "single";
  /** Extra deployment settings (ENCLAVE_CRONS, ENCLAVE_SEED, NEON_PARENT_BRANCH, ...). */
  settings?: Record<string, string>;
  work?: string;
  /** Answers the deploy's `aws.lambda.Invocation`s; planning answers without running anything. */
  invoke?: CaptureOptions["invoke"];
  neonOwnerPassword?: string;
  /** Secrets besides the ones every stage has (`StagingSeedPassword` where ENCLAVE_SEED=staging). */
  secrets?: Record<string, string>;
}

export interface CapturedStage {
  capture: Capture;
  model: StageModel;
  work: string;
}

/** The answer a plan gives the migrate invocation: nothing ran, so no schema digest exists yet. */
export const plannedInvocationResult = JSON.stringify({ schema: "(applied at deploy)", services: [] });

/**
 * Captures a stage with the secrets a deploy would have (fresh signing keys, made for this
 * run and never written to the repository) and the settings of the deploying machine.
 */
export async function captureStageModel(request: StageRequest): Promise<CapturedStage> {
  const work = request.work ?? mkdtempSync(join(tmpdir(), `enclave-stage-${request.stage}-`));
  const capture = await captureStage({
    stage: request.stage,
    work,
    secrets: {
      AuthSigningKey: JSON.stringify(generatePrivateJwk()),
      ServiceSigningKey: JSON.stringify(generatePrivateJwk()),
      NeonApiKey: "neon-api-key-of-the-twin",
      ...request.secrets,
    },
    settings: {
      NEON_PROJECT_ID: "twin-project",
      ENCLAVE_DB_TOPOLOGY: request.topology ?? "per-service",
      ...request.settings,
    },
    invoke: request.invoke ?? (async () => plannedInvocationResult),
    ...(request.neonOwnerPassword ? { neonOwnerPassword: request.neonOwnerPassword } : {}),
  });
  return { capture, model: stageModel(capture, work), work };
}
