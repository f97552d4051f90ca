import { adminJobs } from "@enclave/admin/jobs";
import { jobLambdas, selectJob } from "@enclave/core/job-handler";

/** Every background job of admin; JOB_NAME picks the one a deployed function runs. */
const deployed = () => import("@enclave/admin/deployed");
export const jobs = jobLambdas("admin", adminJobs, async () => (await deployed()).adminContext);
export const handler = selectJob("admin", jobs, async () => (await deployed()).adminConfig.JOB_NAME);
