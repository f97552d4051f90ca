export { type DeployedFunction, type DeployOptions, deployFunction } from "./deploy";
export { unpackZip } from "./zip";
