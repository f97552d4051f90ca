import { paymentsApp } from "@enclave/payments/lambda";
import { handle } from "hono/aws-lambda";

export const handler = handle(paymentsApp);
