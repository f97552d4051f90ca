import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { deadLetterTags } from "../../../../infra/dead-letter-tags";
import type { InvocationRecord } from "../aws/lambda-async";
import { type MessageKind, messageKind } from "../aws/queues";

/**
 * A deployed stage's dead letters, through the AWS APIs: every subscriber's and cron's
 * dead-letter queue, what is in it, and sending it back. The queues are found by their names
 * (SST names them `<app>-<stage>-<Component>DlqQueue-<suffix>`) and recognised by the tags the
 * deployment gives them (infra/dead-letters.ts), which also say whose queue each is.
 *
 * Redrive re-delivers each message to the function it failed in and deletes it only once that
 * function succeeded. SQS's own redrive (StartMessageMoveTask) moves messages back to a source
 * queue; these queues have none: Lambda's on-failure destination, EventBridge's target
 * dead-letter config and Scheduler's dead-letter config all write to them after invoking a
 * function, so the way back is invoking that function again, with the payload it had.
 */

export interface StageQueues {
  app: string;
  stage: string;
}

export interface DeadLetterQueue {
  name: string;
  url: string;
  /** `<service>/<job>`, from the queue's tag. */
  job: string;
  kind: string;
  /** SQS's approximate counts: receivable now, and received by someone and not yet deleted. */
  visible: number;
  inFlight: number;
}

export interface DeadLetter {
  messageId: string;
  /** Who wrote it: Lambda (retries exhausted), EventBridge or Scheduler (could not deliver). */
  kind: MessageKind;
  /** The event's detail-type (a cron's input has none). */
  eventType?: string;
  /** The event's own id (`detail.id`, the outbox row), or else EventBridge's. */
  eventId?: string;
  /** Attempts made before it was dead-lettered, as the writer reports them. */
  attempts?: number;
  /** The error the writer recorded. */
  error?: string;
  sentAt?: string;
  /** The function to deliver it to again, and what to send. */
  target?: { functionArn: string; payload: unknown };
}

export interface RedriveOutcome {
  queue: string;
  job: string;
  messageId: string;
  outcome: "redriven" | "failed" | "skipped";
  error?: string;
}

const PAGE = 10;
/** Long enough for ten messages re-delivered one after another to functions of up to 60 s. */
const REDRIVE_VISIBILITY_SECONDS = 900;
const LIST_VISIBILITY_SECONDS = 60;

/** The stage's dead-letter queues, sorted by job; `job` narrows them to one (`on-user-registered` or `profile/on-user-registered`). */
export async function stageDeadLetterQueues(sqs: SQSClient, stage: StageQueues, job?: string): Promise<DeadLetterQueue[]> {
  const prefix = `${stage.app}-${stage.stage}-`;
  const urls: string[] = [];
  let token: string | undefined;
  do {
    const page = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix, MaxResults: 1000, ...(token ? { NextToken: token } : {}) }));
    urls.push(...(page.QueueUrls ?? []));
    token = page.NextToken;
  } while (token);

  const queues: DeadLetterQueue[] = [];
  for (const url of urls) {
    // `<app>-pr-4-` is also a prefix of `<app>-pr-42-`: the tag says which stage a queue is.
    const { Tags: tags = {} } = await sqs.send(new ListQueueTagsCommand({ QueueUrl: url }));
    const owner = tags[deadLetterTags.job];
    if (tags[deadLetterTags.stage] !== stage.stage || !owner) continue;
    if (job && owner !== job && owner.split("/")[1] !== job) continue;
    const { Attributes: attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
    );
    queues.push({
      name: url.split("/").at(-1)!,
      url,
      job: owner,
      kind: tags[deadLetterTags.kind] ?? "",
      visible: Number(attributes.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    });
  }
  return queues.sort((a, b) => a.job.localeCompare(b.job));
}

/**
 * The messages of one queue, without removing them. SQS cannot show a message without receiving
 * it: each is received (hidden from others for a minute), read, and made visible again.
 */
export async function peekDeadLetters(sqs: SQSClient, queue: Pick<DeadLetterQueue, "url">): Promise<DeadLetter[]> {
  const seen = new Map<string, DeadLetter>();
  const receipts: string[] = [];
  try {
    for (;;) {
      const batch = await receive(sqs, queue.url, LIST_VISIBILITY_SECONDS);
      const fresh = batch.filter((m) => m.MessageId && !seen.has(m.MessageId));
      for (const message of batch) if (message.ReceiptHandle) receipts.push(message.ReceiptHandle);
      for (const message of fresh) seen.set(message.MessageId!, describeDeadLetter(message));
      if (fresh.length === 0) break;
    }
  } finally {
    await release(sqs, queue.url, receipts);
  }
  return [...seen.values()].sort((a, b) => (a.sentAt ?? "").localeCompare(b.sentAt ?? ""));
}

/**
 * Sends every message of the queues back to the function it failed in (a synchronous invoke
 * with the payload it had) and deletes it once the function succeeded. A message whose
 * function fails again, or that names no function, stays in its queue, visible again when the
 * command ends, with the new error in the outcome.
 */
export async function redriveDeadLetters(clients: { sqs: SQSClient; lambda: LambdaClient }, queues: DeadLetterQueue[]): Promise<RedriveOutcome[]> {
  const outcomes: RedriveOutcome[] = [];
  for (const queue of queues) {
    const kept: string[] = [];
    try {
      for (;;) {
        // What fails stays hidden until the end, so each message is tried once per run.
        const batch = await receive(clients.sqs, queue.url, REDRIVE_VISIBILITY_SECONDS);
        if (batch.length === 0) break;
        for (const message of batch) {
          const letter = describeDeadLetter(message);
          const base = { queue: queue.name, job: queue.job, messageId: letter.messageId };
          if (!letter.target) {
            kept.push(message.ReceiptHandle!);
            outcomes.push({ ...base, outcome: "skipped", error: "not a Lambda invocation record nor an EventBridge or Scheduler dead letter" });
            continue;
          }
          const error = await invokeAgain(clients.lambda, letter.target);
          if (error) {
            kept.push(message.ReceiptHandle!);
            outcomes.push({ ...base, outcome: "failed", error });
            continue;
          }
          await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: message.ReceiptHandle! }));
          outcomes.push({ ...base, outcome: "redriven" });
        }
      }
    } finally {
      await release(clients.sqs, queue.url, kept);
    }
  }
  return outcomes;
}

/** What a dead letter is, read from what AWS puts in it: a Lambda invocation record, or an event with EventBridge's or Scheduler's attributes. */
export function describeDeadLetter(message: Message): DeadLetter {
  const attributes = Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([key, value]) => [key, value.StringValue ?? ""]));
  const body = message.Body ?? "";
  const sentAt = message.Attributes?.SentTimestamp ? new Date(Number(message.Attributes.SentTimestamp)).toISOString() : undefined;
  const kind = messageKind({ messageId: message.MessageId ?? "", body, attributes, sentAt: sentAt ?? "" });
  const letter: DeadLetter = { messageId: message.MessageId ?? "", kind, ...(sentAt ? { sentAt } : {}) };
  if (kind === "lambda-destination") {
    const record = JSON.parse(body) as InvocationRecord;
    const response = record.responsePayload as { errorType?: string; errorMessage?: string } | null;
    return {
      ...letter,
      ...eventFields(record.requestPayload),
      attempts: record.requestContext.approximateInvokeCount,
      ...(response?.errorType || response?.errorMessage ? { error: `${response.errorType ?? "Error"}: ${response.errorMessage ?? ""}` } : {}),
      target: { functionArn: record.requestContext.functionArn, payload: record.requestPayload },
    };
  }
  if (kind === "eventbridge-dead-letter" || kind === "scheduler-dead-letter") {
    const payload = parse(body);
    return {
      ...letter,
      ...eventFields(payload),
      ...(attributes.RETRY_ATTEMPTS ? { attempts: Number(attributes.RETRY_ATTEMPTS) + 1 } : {}),
      ...(attributes.ERROR_CODE || attributes.ERROR_MESSAGE ? { error: `${attributes.ERROR_CODE}: ${attributes.ERROR_MESSAGE}` } : {}),
      target: { functionArn: attributes.TARGET_ARN!, payload },
    };
  }
  return letter;
}

function eventFields(payload: unknown): Pick<DeadLetter, "eventType" | "eventId"> {
  const event = payload as { "detail-type"?: unknown; id?: unknown; detail?: { id?: unknown } } | null;
  const eventType = typeof event?.["detail-type"] === "string" ? event["detail-type"] : undefined;
  const eventId = typeof event?.detail?.id === "string" ? event.detail.id : typeof event?.id === "string" ? event.id : undefined;
  return { ...(eventType ? { eventType } : {}), ...(eventId ? { eventId } : {}) };
}

/** Undefined when the function succeeded, else why not. */
async function invokeAgain(lambda: LambdaClient, target: NonNullable<DeadLetter["target"]>): Promise<string | undefined> {
  try {
    const result = await lambda.send(
      new InvokeCommand({
        FunctionName: target.functionArn,
        InvocationType: "RequestResponse",
        Payload: new TextEncoder().encode(JSON.stringify(target.payload)),
      }),
    );
    if (!result.FunctionError) return undefined;
    const answer = parse(new TextDecoder().decode(result.Payload ?? new Uint8Array())) as { errorType?: string; errorMessage?: string } | undefined;
    return `${answer?.errorType ?? result.FunctionError}: ${answer?.errorMessage ?? ""}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

async function receive(sqs: SQSClient, url: string, visibilitySeconds: number): Promise<Message[]> {
  const answer = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: PAGE,
      VisibilityTimeout: visibilitySeconds,
      // Long polling asks every SQS server, so a small queue does not look empty by chance.
      WaitTimeSeconds: 1,
      MessageAttributeNames: ["All"],
      MessageSystemAttributeNames: ["SentTimestamp", "ApproximateReceiveCount"],
    }),
  );
  return answer.Messages ?? [];
}

async function release(sqs: SQSClient, url: string, receipts: string[]) {
  for (const receipt of receipts) {
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: receipt, VisibilityTimeout: 0 })).catch(() => {});
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
