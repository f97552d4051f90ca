import { authApp } from "@enclave/auth/lambda";
import { handle } from "hono/aws-lambda";

export const handler = handle(authApp);
