import { adminApp } from "@enclave/admin/lambda";
import { handle } from "hono/aws-lambda";

export const handler = handle(adminApp);
