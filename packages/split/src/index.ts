export { readSplitConfig, type SplitConfig, type Target } from "./config";
export { type Generated, type GenerateOptions, generatePoc2, schemaFile } from "./generate";
export { runSplit, SplitError, type SplitMode, type SplitOptions, type SplitResult } from "./split";
export { SPLIT_CORRELATION_ID, type TableMap, tableMaps } from "./tables";
