/**
 * ARNs of the twin's AWS resources. The capture hands over names and ARNs interchangeably (a
 * target's `arn`, a queue's `arn`, a bus given by name or ARN), so every service resolves a
 * reference through these helpers and compares physical names only.
 */

export interface AwsScope {
  region: string;
  account: string;
}

export const DEFAULT_SCOPE: AwsScope = { region: "us-east-1", account: "000000000000" };

export const lambdaArn = (scope: AwsScope, name: string) => `arn:aws:lambda:${scope.region}:${scope.account}:function:${name}`;
export const queueArn = (scope: AwsScope, name: string) => `arn:aws:sqs:${scope.region}:${scope.account}:${name}`;
export const eventBusArn = (scope: AwsScope, name: string) => `arn:aws:events:${scope.region}:${scope.account}:event-bus/${name}`;
/** Rules on the default bus have no bus segment; rules on a custom bus do. */
export const ruleArn = (scope: AwsScope, bus: string, name: string) =>
  `arn:aws:events:${scope.region}:${scope.account}:rule/${bus === "default" ? "" : `${bus}/`}${name}`;
export const scheduleArn = (scope: AwsScope, group: string, name: string) => `arn:aws:scheduler:${scope.region}:${scope.account}:schedule/${group}/${name}`;

/**
 * The function name in a name, a full ARN or a qualified ARN (`…:function:name:$LATEST`, as
 * invocation records carry it). A qualifier is dropped: the twin runs `$LATEST` only.
 */
export function functionName(ref: string): string {
  const parts = ref.split(":");
  if (ref.startsWith("arn:")) return parts[6] ?? "";
  // `123456789012:function:name` is a partial ARN Lambda also accepts.
  if (parts[1] === "function") return parts[2] ?? "";
  return parts[0] ?? "";
}

/** The queue name in a name, an ARN or a queue URL. */
export function queueName(ref: string): string {
  if (ref.startsWith("arn:")) return ref.split(":")[5] ?? "";
  if (/^https?:\/\//.test(ref)) return new URL(ref).pathname.split("/").filter(Boolean).at(-1) ?? "";
  return ref;
}

/** The bus name in a name or an ARN (`…:event-bus/name`). */
export function eventBusName(ref: string): string {
  if (!ref.startsWith("arn:")) return ref;
  const resource = ref.split(":").slice(5).join(":");
  return resource.startsWith("event-bus/") ? resource.slice("event-bus/".length) : resource;
}
