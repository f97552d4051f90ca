import { parseArgs } from "node:util";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { SQSClient } from "@aws-sdk/client-sqs";
import { appSettings } from "../capture/capture";
import { type DeadLetterQueue, peekDeadLetters, redriveDeadLetters, stageDeadLetterQueues } from "./dead-letters";

/**
 * `npm run events:dlq -- --stage <s> [--job <name>]` and `npm run events:redrive -- --stage <s>
 * [--job <name>]`: a deployed stage's dead letters, listed and sent back. The AWS account,
 * region and credentials are the standard AWS environment of the machine (AWS_PROFILE,
 * AWS_REGION, ...; AWS_ENDPOINT_URL points the commands at another endpoint, such as a stage
 * twin's). Returns the exit code: 0 done, 1 a failure (a redrive that did not get through
 * included), 2 a command line that cannot run.
 */

export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** The clients to use; built from the standard AWS environment when absent. */
  clients?: { sqs: SQSClient; lambda: LambdaClient };
}

const defaultIo: CommandIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export async function deadLettersCommand(command: "dlq" | "redrive", args: string[], io: CommandIo = defaultIo): Promise<number> {
  const name = command === "dlq" ? "events:dlq" : "events:redrive";
  let stage: string;
  let job: string | undefined;
  try {
    const { values, positionals } = parseArgs({ args, options: { stage: { type: "string" }, job: { type: "string" } }, allowPositionals: true });
    if (positionals.length > 0) throw new Error(`--stage takes no argument "${positionals[0]}" (choose a queue with --job <name>)`);
    stage = values.stage ?? "";
    job = values.job;
  } catch (error) {
    io.err(`${name}: ${(error as Error).message}`);
    return 2;
  }
  if (!/^[a-z][a-z0-9-]{0,29}$/.test(stage)) {
    io.err(`${name}: --stage must be a stage name like pr-42 or production (got "${stage}")`);
    return 2;
  }
  if (job !== undefined && !/^([a-z][a-z0-9_]*\/)?[a-z][a-z0-9-]*$/.test(job)) {
    io.err(`${name}: --job must be a job name like on-user-registered or profile/on-user-registered (got "${job}")`);
    return 2;
  }

  const clients = io.clients ?? { sqs: new SQSClient({}), lambda: new LambdaClient({}) };
  try {
    const { name: app } = await appSettings(stage);
    const queues = await stageDeadLetterQueues(clients.sqs, { app, stage }, job);
    if (queues.length === 0) {
      io.err(`${name}: stage ${stage} has no dead-letter queue${job ? ` for job ${job}` : ""} in this AWS account and region`);
      return 1;
    }
    return command === "dlq" ? await list(clients.sqs, stage, queues, io) : await redrive(clients, stage, queues, io);
  } catch (error) {
    io.err(`${name} --stage ${stage}: ${awsProblem(error)}`);
    return 1;
  } finally {
    if (!io.clients) {
      clients.sqs.destroy();
      clients.lambda.destroy();
    }
  }
}

async function list(sqs: SQSClient, stage: string, queues: DeadLetterQueue[], io: CommandIo): Promise<number> {
  const waiting = queues.reduce((sum, q) => sum + q.visible + q.inFlight, 0);
  io.out(`stage ${stage}: ${queues.length} dead-letter queues, ${waiting} message(s)`);
  for (const queue of queues) {
    if (queue.visible + queue.inFlight === 0) {
      io.out(`  ${queue.job} (${queue.kind}): empty`);
      continue;
    }
    const letters = await peekDeadLetters(sqs, queue);
    const hidden = queue.inFlight > 0 ? `, ${queue.inFlight} being received elsewhere` : "";
    io.out(`  ${queue.job} (${queue.kind}): ${letters.length} message(s)${hidden}  ${queue.name}`);
    for (const letter of letters) {
      const fields = [
        letter.messageId,
        letter.eventType ?? (letter.kind === "unknown" ? "unrecognised message" : "scheduled run"),
        letter.eventId ? `event ${letter.eventId}` : undefined,
        letter.attempts !== undefined ? `attempts ${letter.attempts}` : undefined,
        letter.sentAt ? `at ${letter.sentAt}` : undefined,
        letter.error ? `error ${oneLine(letter.error)}` : undefined,
      ];
      io.out(`    ${fields.filter(Boolean).join("  ")}`);
    }
  }
  return 0;
}

async function redrive(clients: { sqs: SQSClient; lambda: LambdaClient }, stage: string, queues: DeadLetterQueue[], io: CommandIo): Promise<number> {
  const outcomes = await redriveDeadLetters(clients, queues);
  for (const outcome of outcomes) {
    io.out(`  ${outcome.job} ${outcome.messageId} ${outcome.outcome}${outcome.error ? `: ${oneLine(outcome.error)}` : ""}`);
  }
  const count = (kind: string) => outcomes.filter((o) => o.outcome === kind).length;
  io.out(`stage ${stage}: redriven ${count("redriven")}, failed ${count("failed")}, skipped ${count("skipped")}`);
  return count("failed") + count("skipped") > 0 ? 1 : 0;
}

/** What went wrong with the AWS calls, naming the setting to change when it is one. */
function awsProblem(error: unknown): string {
  const { name, message } = error as Error;
  if (name === "CredentialsProviderError") return "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)";
  if (/region is missing/i.test(message)) return "no AWS region: set AWS_REGION to the stage's region";
  if (name === "AccessDenied" || name === "AccessDeniedException") return `access denied: ${oneLine(message)}`;
  return `${name}: ${oneLine(message)}`;
}

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim().slice(0, 1000);
