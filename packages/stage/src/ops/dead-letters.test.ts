import { spawn } from "node:child_process";
import { join } from "node:path";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { root } from "../capture/capture";
import { postgresBinaries } from "../twin/postgres";
import { startTwin, type Twin } from "../twin/twin";
import { twinSql } from "../twin/twin.testing";
import { deadLettersCommand } from "./cli";

/**
 * The cloud dead-letter commands against a stage twin: the SQS and Lambda SDK clients talk to
 * the twin's AWS endpoint, whose queues are the captured dead-letter queues with their tags, and
 * whose functions are the deployed packages. A consumer that fails is dead-lettered by Lambda's
 * asynchronous retries; the commands list it, fail to redrive it while the consumer still fails,
 * and redrive it with exactly one effect once it is fixed.
 */

const STAGE = "pr-9";
const fake = { region: "us-east-1", credentials: { accessKeyId: "TWINTEST", secretAccessKey: "twin-test-secret" } };

const sql = <T>(twin: Twin, text: string) => twinSql<T>(twin, "profile", text);

/** The npm script itself (`npm run events:dlq -- --stage …`), in a process of its own with only the standard AWS variables. */
function npmScript(
  script: "events:dlq" | "events:redrive",
  args: string[],
  endpoint: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "packages/local/src/cli.ts"), script === "events:dlq" ? "dlq" : "redrive", ...args], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        AWS_REGION: fake.region,
        AWS_ACCESS_KEY_ID: fake.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: fake.credentials.secretAccessKey,
        AWS_ENDPOINT_URL: endpoint,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!postgresBinaries())("a deployed stage's dead letters, through SQS and Lambda's APIs", () => {
  let twin: Twin;
  let clients: { sqs: SQSClient; lambda: LambdaClient };
  const run = async (command: "dlq" | "redrive", args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await deadLettersCommand(command, ["--stage", STAGE, ...args], { out: (l) => out.push(l), err: (l) => err.push(l), clients });
    return { code, out, err };
  };
  let userId: string;
  let eventId: string;
  const queueOf = () => twin.functionOf("ProfileOnUserRegistered").asyncInvoke!.onFailureDestination!;
  const profilesOf = async (id: string) => (await sql<{ n: string }>(twin, `select count(*) as n from profile.user_profiles where user_id = '${id}'`))[0]!.n;

  beforeAll(async () => {
    twin = await startTwin({ stage: STAGE, topology: "per-service", timers: false, maxConcurrency: 1 });
    clients = { sqs: new SQSClient({ ...fake, endpoint: twin.awsEndpoint }), lambda: new LambdaClient({ ...fake, endpoint: twin.awsEndpoint }) };
  }, 180_000);
  afterAll(async () => {
    clients?.sqs.destroy();
    clients?.lambda.destroy();
    await twin?.stop();
  }, 60_000);

  test("a consumer that keeps failing is dead-lettered; events:dlq --stage lists it with its job, event, attempts and error", async () => {
    // The profile consumer loses its write permission: every attempt fails.
    await sql(twin, "revoke insert on profile.user_profiles from profile_app");
    const registered = await fetch(`${twin.url}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "dora@example.com", password: "correct horse", name: "Dora" }),
    });
    expect(registered.status).toBe(201);
    userId = ((await registered.json()) as { user: { id: string } }).user.id;
    await twin.idle();
    const event = twin.eventBridge.entries().find((e) => e.detailType === "user.registered" && JSON.stringify(e.detail).includes(userId));
    eventId = (event!.detail as { id: string }).id;
    expect(twin.queues.messages(queueOf())).toHaveLength(1);
    expect(await profilesOf(userId)).toBe("0");

    const listed = await npmScript("events:dlq", ["--stage", STAGE], twin.awsEndpoint);
    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split("\n");
    const queues = twin.model.queues.length;
    expect(lines[0]).toBe(`stage ${STAGE}: ${queues} dead-letter queues, 1 message(s)`);
    expect(lines.filter((l) => l.endsWith("): empty"))).toHaveLength(queues - 1);
    const header = lines.findIndex((l) => l.startsWith("  profile/on-user-registered (subscriber): 1 message(s)"));
    expect(header).toBeGreaterThan(0);
    expect(lines[header + 1]).toMatch(
      new RegExp(`user\\.registered {2}event ${eventId} {2}attempts 3 {2}at \\S+ {2}error Error: Failed query: .*"profile"\\."user_profiles"`),
    );
    // Listing leaves the message where it was, receivable at once.
    expect(twin.queues.counts(queueOf())).toEqual({ visible: 1, notVisible: 0 });
  }, 120_000);

  test("events:redrive --stage keeps a message whose consumer still fails, then delivers it once the consumer is fixed: exactly one effect", async () => {
    const stillBroken = await run("redrive", ["--job", "on-user-registered"]);
    expect(stillBroken.code).toBe(1);
    expect(stillBroken.out.at(-1)).toBe(`stage ${STAGE}: redriven 0, failed 1, skipped 0`);
    expect(stillBroken.out[0]).toMatch(/^ {2}profile\/on-user-registered \S+ failed: Error: Failed query: .*"profile"\."user_profiles"/);
    expect(twin.queues.counts(queueOf())).toEqual({ visible: 1, notVisible: 0 });
    expect(await profilesOf(userId)).toBe("0");

    await sql(twin, "grant insert on profile.user_profiles to profile_app");
    const redriven = await npmScript("events:redrive", ["--stage", STAGE, "--job", "profile/on-user-registered"], twin.awsEndpoint);
    expect(redriven.stderr).toBe("");
    expect(redriven.code).toBe(0);
    expect(redriven.stdout).toContain(`stage ${STAGE}: redriven 1, failed 0, skipped 0`);
    await twin.idle();
    expect(twin.queues.messages(queueOf())).toEqual([]);
    expect(await profilesOf(userId)).toBe("1");
    const created = twin.eventBridge.entries().filter((e) => e.detailType === "profile.created" && JSON.stringify(e.detail).includes(userId));
    expect(created).toHaveLength(1);

    // Nothing left: a second redrive does nothing, and the effect stays single.
    const again = await run("redrive", []);
    expect(again.code).toBe(0);
    expect(again.out).toEqual([`stage ${STAGE}: redriven 0, failed 0, skipped 0`]);
    expect(await profilesOf(userId)).toBe("1");
    const listed = await run("dlq", []);
    expect(listed.out[0]).toBe(`stage ${STAGE}: ${twin.model.queues.length} dead-letter queues, 0 message(s)`);
    expect(eventId).toMatch(/\S/);
  }, 120_000);

  test("usage and stage mistakes are one plain line", async () => {
    expect(await run("dlq", ["--job", "No Such Job"])).toMatchObject({ code: 2, err: [expect.stringMatching(/^events:dlq: --job must be a job name/)] });
    const other = await deadLettersCommand("dlq", ["--stage", "pr-99"], {
      out: () => {},
      err: (l) => expect(l).toMatch(/^events:dlq: stage pr-99 has no dead-letter queue/),
      clients,
    });
    expect(other).toBe(1);
    const bad = await deadLettersCommand("redrive", ["--stage", "Pr 9"], { out: () => {}, err: () => {}, clients });
    expect(bad).toBe(2);
  });
});
