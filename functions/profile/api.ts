import { profileApp } from "@enclave/profile/lambda";
import { handle } from "hono/aws-lambda";

export const handler = handle(profileApp);
