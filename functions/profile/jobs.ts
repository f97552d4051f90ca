import { jobLambdas, selectJob } from "@enclave/core/job-handler";
import { profileJobs } from "@enclave/profile/jobs";

/** Every background job of profile; JOB_NAME picks the one a deployed function runs. */
const deployed = () => import("@enclave/profile/deployed");
export const jobs = jobLambdas("profile", profileJobs, async () => (await deployed()).profileContext);
export const handler = selectJob("profile", jobs, async () => (await deployed()).profileConfig.JOB_NAME);
