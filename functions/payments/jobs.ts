import { jobLambdas, selectJob } from "@enclave/core/job-handler";
import { paymentsJobs } from "@enclave/payments/jobs";

/** Every background job of payments; JOB_NAME picks the one a deployed function runs. */
const deployed = () => import("@enclave/payments/deployed");
export const jobs = jobLambdas("payments", paymentsJobs, async () => (await deployed()).paymentsContext);
export const handler = selectJob("payments", jobs, async () => (await deployed()).paymentsConfig.JOB_NAME);
