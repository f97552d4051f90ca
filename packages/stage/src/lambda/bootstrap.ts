import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { ChildMessage, FunctionError, InvokeMessage, ParentMessage } from "./protocol";

/**
 * Lambda's Node.js runtime, inside one function process: loads the handler module once (the init
 * phase), then runs one invocation at a time as the emulator sends them. Everything it needs
 * comes from the variables Lambda itself sets (`_HANDLER`, `LAMBDA_TASK_ROOT`, ...), as in the
 * real runtime, so the function's environment carries nothing of the emulator's.
 */

interface LambdaContext {
  callbackWaitsForEmptyEventLoop: boolean;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  getRemainingTimeInMillis(): number;
}

type Handler = (event: unknown, context: LambdaContext) => unknown;

class RuntimeError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

const env = process.env;
const taskRoot = env.LAMBDA_TASK_ROOT ?? process.cwd();
const handlerString = env._HANDLER ?? "";

function send(message: ChildMessage): Promise<void> {
  return new Promise((done) => {
    if (!process.send || !process.connected) return done();
    process.send(message, undefined, {}, () => done());
  });
}

/** What Lambda reports for a thrown value: an Error's name and message, else its type and text. */
function functionError(error: unknown): FunctionError {
  if (error instanceof Error) return { errorType: error.name, errorMessage: error.message };
  return { errorType: typeof error, errorMessage: String(error) };
}

/** The line Lambda's runtime logs for a failure, so the stack is not lost: CloudWatch shows the same. */
function logError(requestId: string | undefined, label: string, error: unknown): void {
  const { errorType, errorMessage } = functionError(error);
  const stack = error instanceof Error ? (error.stack?.split("\n") ?? []) : [];
  process.stderr.write(`${new Date().toISOString()}\t${requestId ?? "undefined"}\tERROR\t${label}\t${JSON.stringify({ errorType, errorMessage, stack })}\n`);
}

async function die(error: FunctionError): Promise<never> {
  await send({ type: "fatal", ...error });
  process.exit(129);
}

/** The invocation in progress, for log lines. */
let current: string | undefined;

process.on("unhandledRejection", (reason) => {
  logError(current, "Unhandled Promise Rejection", reason);
  void die({ errorType: "Runtime.UnhandledPromiseRejection", errorMessage: String(reason) });
});
process.on("uncaughtException", (error) => {
  logError(current, "Uncaught Exception", error);
  void die(functionError(error));
});
// The emulator is gone: nothing will invoke this instance again.
process.on("disconnect", () => process.exit(0));

/** `dir/file.export.nested` → the module path `dir/file` and the property path `export.nested`. */
function splitHandler(handler: string): { modulePath: string; propertyPath: string[] } {
  const slash = handler.lastIndexOf("/");
  const moduleRoot = handler.slice(0, slash + 1);
  const match = /^([^.]*)\.(.*)$/.exec(handler.slice(slash + 1));
  if (!match?.[1] || !match[2]) throw new RuntimeError("Runtime.MalformedHandlerName", "Bad handler");
  if (moduleRoot.split("/").includes("..")) throw new RuntimeError("Runtime.MalformedHandlerName", "'../' not allowed in handler path");
  return { modulePath: moduleRoot + match[1], propertyPath: match[2].split(".") };
}

/** Whether the nearest package.json at or below the task root says `"type": "module"`. */
function packageTypeModule(file: string): boolean {
  let dir = dirname(file);
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        return (JSON.parse(readFileSync(manifest, "utf8")) as { type?: unknown }).type === "module";
      } catch {
        return false;
      }
    }
    const rel = relative(taskRoot, dir);
    if (rel === "" || rel.startsWith("..") || dir === dirname(dir)) return false;
    dir = dirname(dir);
  }
}

const isFile = (path: string) => existsSync(path) && statSync(path).isFile();

/**
 * The handler module, found as Lambda's runtime finds it: an extensionless file, then `.js`
 * (CommonJS unless package.json says module), `.mjs`, `.cjs`.
 */
async function loadModule(modulePath: string): Promise<Record<string, unknown>> {
  const base = resolve(taskRoot, modulePath);
  if (base !== taskRoot && !base.startsWith(taskRoot + sep)) throw new RuntimeError("Runtime.MalformedHandlerName", "Bad handler");
  const require = createRequire(join(taskRoot, "index.js"));
  const importFile = async (file: string) => (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  try {
    if (isFile(base)) return require(base) as Record<string, unknown>;
    if (isFile(`${base}.js`)) return packageTypeModule(`${base}.js`) ? await importFile(`${base}.js`) : (require(`${base}.js`) as Record<string, unknown>);
    if (isFile(`${base}.mjs`)) return await importFile(`${base}.mjs`);
    if (isFile(`${base}.cjs`)) return require(`${base}.cjs`) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (error instanceof SyntaxError) throw new RuntimeError("Runtime.UserCodeSyntaxError", `SyntaxError: ${error.message}`);
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND")
      throw new RuntimeError("Runtime.ImportModuleError", `Error: ${(error as Error).message}`);
    throw error;
  }
  throw new RuntimeError("Runtime.ImportModuleError", `Error: Cannot find module '${modulePath}'`);
}

async function loadHandler(): Promise<Handler> {
  const { modulePath, propertyPath } = splitHandler(handlerString);
  let value: unknown = await loadModule(modulePath);
  for (const key of propertyPath) value = value === null || value === undefined ? undefined : (value as Record<string, unknown>)[key];
  if (value === undefined) throw new RuntimeError("Runtime.HandlerNotFound", `${handlerString} is undefined or not exported`);
  if (typeof value !== "function") throw new RuntimeError("Runtime.HandlerNotFound", `${handlerString} is not a function`);
  return value as Handler;
}

function contextFor(message: InvokeMessage): LambdaContext {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME ?? "",
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION ?? "$LATEST",
    invokedFunctionArn: message.invokedFunctionArn,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? "",
    awsRequestId: message.requestId,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME ?? "",
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME ?? "",
    getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
  };
}

async function invoke(handler: Handler, message: InvokeMessage): Promise<void> {
  const { requestId } = message;
  current = requestId;
  try {
    const result = await handler(JSON.parse(message.event), contextFor(message));
    await send({ type: "result", requestId, payload: JSON.stringify(result) ?? "null" });
  } catch (error) {
    logError(requestId, "Invoke Error", error);
    await send({ type: "error", requestId, ...functionError(error) });
  } finally {
    current = undefined;
  }
}

let handler: Handler;
try {
  handler = await loadHandler();
} catch (error) {
  logError(undefined, "Init Error", error);
  await send({ type: "initError", ...functionError(error) });
  process.exit(1);
}
process.on("message", (message: ParentMessage) => {
  if (message.type === "invoke") void invoke(handler, message);
});
await send({ type: "ready" });
