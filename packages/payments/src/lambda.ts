import { readPaymentsConfig } from "./config";
import { paymentsContextFromConfig } from "./context";
import { createPaymentsApp } from "./routes";

/** The payments service as deployed: configuration from the environment, connections on first use. */
export const paymentsContext = paymentsContextFromConfig(readPaymentsConfig());
export const paymentsApp = createPaymentsApp(paymentsContext);
