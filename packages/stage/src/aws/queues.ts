import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AwsScope, DEFAULT_SCOPE, queueArn, queueName } from "./arn";
import type { EventBridge } from "./eventbridge";
import type { InvocationRecord, LambdaAsync } from "./lambda-async";

/**
 * The stage's SQS queues, as far as the twin needs them: dead-letter queues that Lambda
 * (on-failure destinations), EventBridge (target dead-letter configs) and Scheduler write to, to
 * be inspected, deleted from and redriven. Each queue is one JSON file under `dir`, rewritten
 * on every change, so a restarted twin still shows what failed in the last run. One instance
 * owns a directory at a time: each keeps its queues in memory and writes them whole.
 */

/** Attribute the twin adds to say which service wrote a message (SQS names cannot start with `AWS.`, and this one is ours). */
export const SOURCE_ATTRIBUTE = "twin.source";
export type MessageSource = "lambda:on-failure" | "lambda:on-success" | "events:dead-letter" | "scheduler:dead-letter";

export interface RedriveAttempt {
  at: string;
  error: string;
}

export interface QueueMessage {
  messageId: string;
  body: string;
  /** What SQS would carry as message attributes (EventBridge's RULE_ARN, ERROR_CODE, …), plus `twin.source`. */
  attributes: Record<string, string>;
  sentAt: string;
  /** Redrives that did not succeed; the message stays until one does. */
  redriveFailures?: RedriveAttempt[];
}

export interface QueueInfo {
  name: string;
  arn: string;
  messageCount: number;
}

export interface QueuesOptions {
  /** Where the queues are kept (created if missing). */
  dir: string;
  /** Queues the stage declares (names or ARNs), so they are listed even while empty. */
  queues?: string[];
  scope?: AwsScope;
}

export type MessageKind = "lambda-destination" | "eventbridge-dead-letter" | "scheduler-dead-letter" | "unknown";

export interface RedriveResult {
  messageId: string;
  kind: MessageKind;
  outcome: "succeeded" | "failed" | "skipped";
  error?: string;
}

export interface RedriveTargets {
  lambda: Pick<LambdaAsync, "invokeAsync">;
  /** Needed for messages EventBridge dead-lettered; without it they go straight to their function. */
  eventBridge?: Pick<EventBridge, "redeliver">;
}

interface StoredQueue {
  name: string;
  arn: string;
  messages: QueueMessage[];
  tags?: Record<string, string>;
}

/** A message handed out by `receive`: hidden from other receivers until its visibility timeout ends. */
export interface ReceivedMessage {
  message: QueueMessage;
  receiptHandle: string;
  receiveCount: number;
}

/** What SQS keeps per message beyond its body: when it shows again, how often it was received, its latest receipt. */
interface Visibility {
  visibleAt: number;
  receiveCount: number;
  receiptHandle?: string;
}

// SQS's own rule for names; it also keeps a name from leaving `dir`.
const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}(\.fifo)?$/;

export class Queues {
  private readonly stored = new Map<string, StoredQueue>();
  private readonly redriving = new Set<string>();
  private readonly visibility = new Map<string, Visibility>();
  private readonly scope: AwsScope;

  constructor(private readonly options: QueuesOptions) {
    this.scope = options.scope ?? DEFAULT_SCOPE;
    mkdirSync(options.dir, { recursive: true });
    for (const file of readdirSync(options.dir)) {
      if (!file.endsWith(".json")) continue;
      const queue = JSON.parse(readFileSync(join(options.dir, file), "utf8")) as StoredQueue;
      this.stored.set(queue.name, queue);
    }
    for (const ref of options.queues ?? []) this.declare(ref);
  }

  /** Makes a queue exist (idempotent), with the tags the stage gave it. */
  declare(ref: string, tags?: Record<string, string>): QueueInfo {
    const queue = this.queue(ref);
    if (tags) {
      queue.tags = { ...tags };
      this.save(queue);
    }
    return this.info(queue);
  }

  tags(ref: string): Record<string, string> {
    return { ...(this.existing(ref).tags ?? {}) };
  }

  /** True when the queue exists (by name, ARN or URL). */
  has(ref: string): boolean {
    return this.stored.has(this.name(ref));
  }

  /** SQS's approximate counts: messages that can be received now, and those received and not yet deleted. */
  counts(ref: string, now = Date.now()): { visible: number; notVisible: number } {
    const messages = this.existing(ref).messages;
    const notVisible = messages.filter((m) => (this.visibility.get(m.messageId)?.visibleAt ?? 0) > now).length;
    return { visible: messages.length - notVisible, notVisible };
  }

  /**
   * ReceiveMessage: up to `max` visible messages, oldest first, each hidden for
   * `visibilityTimeoutSeconds` under a new receipt handle (the only handle that deletes it).
   */
  receive(ref: string, options: { max?: number; visibilityTimeoutSeconds?: number } = {}, now = Date.now()): ReceivedMessage[] {
    const queue = this.existing(ref);
    const received: ReceivedMessage[] = [];
    for (const message of queue.messages) {
      if (received.length >= (options.max ?? 1)) break;
      const state = this.visibility.get(message.messageId) ?? { visibleAt: 0, receiveCount: 0 };
      if (state.visibleAt > now) continue;
      state.receiveCount += 1;
      state.visibleAt = now + (options.visibilityTimeoutSeconds ?? 30) * 1000;
      state.receiptHandle = `${message.messageId}#${randomUUID()}`;
      this.visibility.set(message.messageId, state);
      received.push({ message: { ...message }, receiptHandle: state.receiptHandle, receiveCount: state.receiveCount });
    }
    return received;
  }

  /** DeleteMessage by receipt handle; false when the handle is not the message's latest. */
  deleteReceived(ref: string, receiptHandle: string): boolean {
    const messageId = this.receiptOwner(ref, receiptHandle);
    if (!messageId) return false;
    this.visibility.delete(messageId);
    return this.delete(ref, messageId);
  }

  /** ChangeMessageVisibility: 0 makes a received message visible again at once. */
  changeVisibility(ref: string, receiptHandle: string, seconds: number, now = Date.now()): boolean {
    const messageId = this.receiptOwner(ref, receiptHandle);
    const state = messageId ? this.visibility.get(messageId) : undefined;
    if (!state) return false;
    state.visibleAt = now + seconds * 1000;
    return true;
  }

  private receiptOwner(ref: string, receiptHandle: string): string | undefined {
    const messageId = receiptHandle.split("#")[0] ?? "";
    const queue = this.existing(ref);
    if (!queue.messages.some((m) => m.messageId === messageId)) return undefined;
    return this.visibility.get(messageId)?.receiptHandle === receiptHandle ? messageId : undefined;
  }

  private existing(ref: string): StoredQueue {
    const queue = this.stored.get(this.name(ref));
    if (!queue) throw new QueueDoesNotExist(ref);
    return queue;
  }

  queues(): QueueInfo[] {
    return [...this.stored.values()].map((queue) => this.info(queue));
  }

  /**
   * Adds a message. A queue nobody declared is created rather than refused: a failure record
   * with nowhere to go is exactly what the twin is there to show.
   */
  send(ref: string, body: string, attributes: Record<string, string> = {}): QueueMessage {
    const queue = this.queue(ref);
    const message: QueueMessage = { messageId: randomUUID(), body, attributes: { ...attributes }, sentAt: new Date().toISOString() };
    queue.messages.push(message);
    this.save(queue);
    return message;
  }

  /** Messages of one queue, oldest first. */
  messages(ref: string): QueueMessage[] {
    return [...(this.stored.get(this.name(ref))?.messages ?? [])];
  }

  delete(ref: string, messageId: string): boolean {
    const queue = this.stored.get(this.name(ref));
    const index = queue?.messages.findIndex((m) => m.messageId === messageId) ?? -1;
    if (!queue || index < 0) return false;
    queue.messages.splice(index, 1);
    this.save(queue);
    return true;
  }

  purge(ref: string): number {
    const queue = this.stored.get(this.name(ref));
    if (!queue) return 0;
    const count = queue.messages.length;
    queue.messages = [];
    this.save(queue);
    return count;
  }

  /**
   * Sends messages (all of the queue's, or the given ones) back where they failed, one after
   * the other, and removes each once it got through:
   * - a Lambda invocation record is invoked again asynchronously with its `requestPayload`, and
   *   got through when the function succeeded (Lambda's own retries included);
   * - an event EventBridge dead-lettered is delivered again to the rule target it failed for;
   * - an input Scheduler dead-lettered is delivered again to the schedule's function.
   * A redrive that fails leaves the message where it is, noted in `redriveFailures`, instead of
   * adding a second record of the same failure.
   */
  async redrive(ref: string, targets: RedriveTargets, messageIds?: string[]): Promise<RedriveResult[]> {
    const results: RedriveResult[] = [];
    for (const message of this.messages(ref)) {
      if (messageIds && !messageIds.includes(message.messageId)) continue;
      const kind = messageKind(message);
      if (this.redriving.has(message.messageId)) {
        results.push({ messageId: message.messageId, kind, outcome: "skipped", error: "a redrive of this message is under way" });
        continue;
      }
      this.redriving.add(message.messageId);
      try {
        const error = await redriveOne(message, kind, targets);
        if (error === undefined) {
          this.delete(ref, message.messageId);
          results.push({ messageId: message.messageId, kind, outcome: "succeeded" });
        } else {
          this.noteFailure(ref, message.messageId, error);
          results.push({ messageId: message.messageId, kind, outcome: kind === "unknown" ? "skipped" : "failed", error });
        }
      } finally {
        this.redriving.delete(message.messageId);
      }
    }
    return results;
  }

  private noteFailure(ref: string, messageId: string, error: string) {
    const queue = this.stored.get(this.name(ref));
    const message = queue?.messages.find((m) => m.messageId === messageId);
    if (!queue || !message) return;
    (message.redriveFailures ??= []).push({ at: new Date().toISOString(), error });
    this.save(queue);
  }

  private name(ref: string): string {
    const name = queueName(ref);
    if (!QUEUE_NAME.test(name)) throw new Error(`not an SQS queue name or ARN: ${JSON.stringify(ref)}`);
    return name;
  }

  private queue(ref: string): StoredQueue {
    const name = this.name(ref);
    let queue = this.stored.get(name);
    if (!queue) {
      queue = { name, arn: ref.startsWith("arn:") ? ref : queueArn(this.scope, name), messages: [] };
      this.stored.set(name, queue);
      this.save(queue);
    }
    return queue;
  }

  private info(queue: StoredQueue): QueueInfo {
    return { name: queue.name, arn: queue.arn, messageCount: queue.messages.length };
  }

  private save(queue: StoredQueue) {
    // Write-then-rename: a twin killed mid-write leaves the previous file, never half of one.
    const file = join(this.options.dir, `${queue.name}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(queue, null, 2));
    renameSync(`${file}.tmp`, file);
  }
}

export class QueueDoesNotExist extends Error {
  constructor(ref: string) {
    super(`The specified queue does not exist: ${ref}`);
    this.name = "QueueDoesNotExist";
  }
}

/**
 * What wrote a message, from what AWS itself puts in it (so a message copied from a real queue
 * is recognised too): EventBridge and Scheduler set RULE_ARN / SCHEDULE_ARN attributes, a
 * Lambda destination record is recognisable by its body.
 */
export function messageKind(message: QueueMessage): MessageKind {
  if (message.attributes.RULE_ARN && message.attributes.TARGET_ARN) return "eventbridge-dead-letter";
  if (message.attributes.SCHEDULE_ARN && message.attributes.TARGET_ARN) return "scheduler-dead-letter";
  const record = parseJson(message.body) as Partial<InvocationRecord> | undefined;
  if (record?.version === "1.0" && typeof record.requestContext?.functionArn === "string" && "requestPayload" in record) return "lambda-destination";
  return "unknown";
}

/** Undefined when the message got through, else why not. */
async function redriveOne(message: QueueMessage, kind: MessageKind, targets: RedriveTargets): Promise<string | undefined> {
  try {
    switch (kind) {
      case "lambda-destination": {
        const record = JSON.parse(message.body) as InvocationRecord;
        const accepted = targets.lambda.invokeAsync(record.requestContext.functionArn, record.requestPayload, { destinations: false });
        const done = await accepted.done;
        return done.status === "succeeded" ? undefined : `${done.lastError?.errorType ?? "Error"}: ${done.lastError?.errorMessage ?? done.status}`;
      }
      case "eventbridge-dead-letter": {
        const event = JSON.parse(message.body) as Record<string, unknown>;
        const ruleArn = message.attributes.RULE_ARN!;
        const targetArn = message.attributes.TARGET_ARN!;
        if (!targets.eventBridge) return directly(targets, targetArn, event);
        const delivery = await targets.eventBridge.redeliver({ event, ruleArn, targetArn });
        return delivery.outcome === "delivered" ? undefined : `${delivery.errorCode}: ${delivery.errorMessage}`;
      }
      case "scheduler-dead-letter":
        return directly(targets, message.attributes.TARGET_ARN!, JSON.parse(message.body));
      case "unknown":
        return "not a Lambda invocation record nor an EventBridge or Scheduler dead letter: nothing to redrive it to";
    }
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** Delivery only: what the function then does is Lambda's business (its own retries and destination). */
function directly(targets: RedriveTargets, target: string, payload: unknown): undefined {
  targets.lambda.invokeAsync(target, payload);
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
