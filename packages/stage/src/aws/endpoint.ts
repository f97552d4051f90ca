import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Invoke } from "../contracts";
import { functionName, queueArn, queueName } from "./arn";
import type { LambdaAsync } from "./lambda-async";
import { QueueDoesNotExist, type Queues } from "./queues";

/**
 * The twin's SQS and Lambda APIs on one local endpoint, for the operator's tools (the cloud
 * dead-letter commands) pointed at the twin with AWS_ENDPOINT_URL. Only what those tools use:
 * SQS's JSON protocol (`X-Amz-Target: AmazonSQS.<Action>`, as @aws-sdk/client-sqs 3.x speaks
 * it) for ListQueues, GetQueueUrl, GetQueueAttributes, ListQueueTags, ReceiveMessage,
 * DeleteMessage and ChangeMessageVisibility; and Lambda's Invoke
 * (`POST /2015-03-31/functions/<name>/invocations`), synchronous or as an event.
 */

export interface AwsEndpointOptions {
  queues: Queues;
  /** Synchronous invocation (RequestResponse). */
  invoke: Invoke;
  /** Asynchronous invocation (Event), with Lambda's retries and destinations. */
  lambda: Pick<LambdaAsync, "invokeAsync">;
  region: string;
  account: string;
}

export interface AwsEndpoint {
  url: string;
  close(): Promise<void>;
}

class SqsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly queryError: string,
  ) {
    super(message);
  }
}

const md5 = (text: string) => createHash("md5").update(text, "utf8").digest("hex");

export async function startAwsEndpoint(options: AwsEndpointOptions): Promise<AwsEndpoint> {
  let url = "";
  const queueUrl = (name: string) => `${url}/${options.account}/${name}`;
  const queueOf = (input: Record<string, unknown>) => {
    const ref = String(input.QueueUrl ?? "");
    if (!ref || !options.queues.has(ref)) {
      throw new SqsError("com.amazonaws.sqs#QueueDoesNotExist", "The specified queue does not exist.", "AWS.SimpleQueueService.NonExistentQueue;Sender");
    }
    return queueName(ref);
  };

  const sqs: Record<string, (input: Record<string, unknown>) => unknown> = {
    ListQueues(input) {
      const prefix = String(input.QueueNamePrefix ?? "");
      const names = options.queues
        .queues()
        .map((q) => q.name)
        .filter((name) => name.startsWith(prefix))
        .sort();
      // Pages as SQS does with MaxResults: the token is where the next page starts.
      const max = Number(input.MaxResults ?? 1000);
      const start = input.NextToken ? Number(input.NextToken) : 0;
      const page = names.slice(start, start + max);
      return { QueueUrls: page.map(queueUrl), ...(start + max < names.length ? { NextToken: String(start + max) } : {}) };
    },
    GetQueueUrl(input) {
      const name = String(input.QueueName ?? "");
      if (!options.queues.has(name)) queueOf({});
      return { QueueUrl: queueUrl(name) };
    },
    GetQueueAttributes(input) {
      const name = queueOf(input);
      const counts = options.queues.counts(name);
      const all: Record<string, string> = {
        QueueArn: options.queues.queues().find((q) => q.name === name)?.arn ?? queueArn({ region: options.region, account: options.account }, name),
        ApproximateNumberOfMessages: String(counts.visible),
        ApproximateNumberOfMessagesNotVisible: String(counts.notVisible),
        ApproximateNumberOfMessagesDelayed: "0",
      };
      const wanted = (input.AttributeNames as string[] | undefined) ?? [];
      return { Attributes: wanted.includes("All") ? all : Object.fromEntries(Object.entries(all).filter(([key]) => wanted.includes(key))) };
    },
    ListQueueTags(input) {
      return { Tags: options.queues.tags(queueOf(input)) };
    },
    ReceiveMessage(input) {
      const name = queueOf(input);
      const max = Number(input.MaxNumberOfMessages ?? 1);
      if (!Number.isInteger(max) || max < 1 || max > 10) {
        throw new SqsError(
          "com.amazonaws.sqs#InvalidParameterValue",
          "Value for parameter MaxNumberOfMessages is invalid. Reason: must be between 1 and 10.",
          "InvalidParameterValue;Sender",
        );
      }
      const received = options.queues.receive(name, { max, visibilityTimeoutSeconds: Number(input.VisibilityTimeout ?? 30) });
      // No long polling: an empty answer comes at once, which a receiver treats as "nothing visible now".
      return {
        Messages: received.map(({ message, receiptHandle, receiveCount }) => {
          const attributes = Object.fromEntries(Object.entries(message.attributes).map(([key, value]) => [key, { DataType: "String", StringValue: value }]));
          return {
            MessageId: message.messageId,
            ReceiptHandle: receiptHandle,
            MD5OfBody: md5(message.body),
            Body: message.body,
            Attributes: {
              ApproximateReceiveCount: String(receiveCount),
              SentTimestamp: String(Date.parse(message.sentAt)),
              ApproximateFirstReceiveTimestamp: String(Date.now()),
            },
            ...(Object.keys(attributes).length > 0 ? { MessageAttributes: attributes } : {}),
          };
        }),
      };
    },
    DeleteMessage(input) {
      const name = queueOf(input);
      if (!options.queues.deleteReceived(name, String(input.ReceiptHandle ?? ""))) {
        throw new SqsError("com.amazonaws.sqs#ReceiptHandleIsInvalid", "The input receipt handle is invalid.", "ReceiptHandleIsInvalid;Sender");
      }
      return {};
    },
    ChangeMessageVisibility(input) {
      const name = queueOf(input);
      if (!options.queues.changeVisibility(name, String(input.ReceiptHandle ?? ""), Number(input.VisibilityTimeout ?? 0))) {
        throw new SqsError(
          "com.amazonaws.sqs#MessageNotInflight",
          "Message does not exist or is not available for visibility timeout change.",
          "AWS.SimpleQueueService.MessageNotInflight;Sender",
        );
      }
      return {};
    },
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "x-amzn-requestid": randomUUID(), ...headers }).end(text);
  };

  const handleSqs = (action: string, text: string, res: ServerResponse) => {
    const operation = sqs[action];
    if (!operation) return send(res, 400, { __type: "com.amazonaws.sqs#UnsupportedOperation", message: `The twin's SQS does not support ${action}` });
    try {
      send(res, 200, operation(text ? (JSON.parse(text) as Record<string, unknown>) : {}), { "content-type": "application/x-amz-json-1.0" });
    } catch (error) {
      if (error instanceof SqsError) return send(res, 400, { __type: error.type, message: error.message }, { "x-amzn-query-error": error.queryError });
      if (error instanceof QueueDoesNotExist) {
        return send(
          res,
          400,
          { __type: "com.amazonaws.sqs#QueueDoesNotExist", message: error.message },
          { "x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender" },
        );
      }
      send(res, 500, { __type: "com.amazonaws.sqs#InternalError", message: (error as Error).message });
    }
  };

  const handleInvoke = async (name: string, req: IncomingMessage, text: string, res: ServerResponse) => {
    let payload: unknown = null;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      return send(res, 400, { Type: "User", message: "Could not parse request body into json" }, { "x-amzn-errortype": "InvalidRequestContentException" });
    }
    const type = String(req.headers["x-amz-invocation-type"] ?? "RequestResponse");
    if (type === "Event") {
      options.lambda.invokeAsync(name, payload);
      return send(res, 202, undefined);
    }
    if (type === "DryRun") return send(res, 204, undefined);
    const outcome = await options.invoke(name, payload);
    if (!outcome.ok && outcome.errorType === "ResourceNotFoundException") {
      return send(res, 404, { Type: "User", message: outcome.errorMessage }, { "x-amzn-errortype": "ResourceNotFoundException" });
    }
    if (!outcome.ok) {
      return send(
        res,
        200,
        { errorType: outcome.errorType, errorMessage: outcome.errorMessage },
        { "x-amz-function-error": "Unhandled", "x-amz-executed-version": "$LATEST" },
      );
    }
    send(res, 200, outcome.result ?? null, { "x-amz-executed-version": "$LATEST" });
  };

  const server: Server = createServer((req, res) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      const target = String(req.headers["x-amz-target"] ?? "");
      const invocation = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(new URL(req.url ?? "/", "http://twin").pathname);
      if (req.method === "POST" && target.startsWith("AmazonSQS.")) return handleSqs(target.slice("AmazonSQS.".length), text, res);
      if (req.method === "POST" && invocation) return void handleInvoke(functionName(decodeURIComponent(invocation[1]!)), req, text, res);
      send(res, 404, { message: "the twin's AWS endpoint answers SQS (JSON protocol) and Lambda Invoke only" });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
