import { readPaymentsConfig } from "./config";
import { paymentsContextFromConfig } from "./context";

/** The payments service as deployed: configuration from the environment, connections on first use. */
export const paymentsConfig = readPaymentsConfig();
export const paymentsContext = paymentsContextFromConfig(paymentsConfig);
