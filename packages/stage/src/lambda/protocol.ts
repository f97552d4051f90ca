/**
 * Messages between the emulator and the bootstrap in a function process, over Node's IPC channel
 * (JSON serialization). Events and results travel as JSON text so they are serialized exactly
 * once, by `JSON.stringify`, as Lambda's runtime does.
 */

export interface InvokeMessage {
  type: "invoke";
  requestId: string;
  /** The event as JSON text. */
  event: string;
  /** Epoch milliseconds when the function times out: `getRemainingTimeInMillis()` counts down to it. */
  deadline: number;
  invokedFunctionArn: string;
}

export type ParentMessage = InvokeMessage;

export interface FunctionError {
  errorType: string;
  errorMessage: string;
}

export type ChildMessage =
  /** The handler module is loaded: the instance takes invocations. */
  | { type: "ready" }
  /** Loading the handler module failed; the process exits after sending this. */
  | ({ type: "initError" } & FunctionError)
  | { type: "result"; requestId: string /** The result as JSON text. */; payload: string }
  | ({ type: "error"; requestId: string } & FunctionError)
  /** An unhandled rejection or uncaught exception; the process exits after sending this. */
  | ({ type: "fatal" } & FunctionError);
