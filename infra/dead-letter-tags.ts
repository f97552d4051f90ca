/**
 * Tags every dead-letter queue carries (infra/dead-letters.ts): the operator's commands
 * (`npm run events:dlq -- --stage <s>`) find a stage's queues by them and say whose each is.
 * Plain data, shared with those commands: no SST global here.
 */
export const deadLetterTags = {
  stage: "enclave:stage",
  /** `<service>/<job>`, e.g. `profile/on-user-registered`. */
  job: "enclave:dead-letters-of",
  /** `subscriber` or `cron`. */
  kind: "enclave:job-kind",
} as const;
