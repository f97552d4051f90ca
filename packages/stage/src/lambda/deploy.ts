import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import type { FunctionSpec, InvokeOutcome, TwinNetwork } from "../contracts";
import { twinPreloadImport } from "../network/preload";
import { compileModule } from "./compile";
import { functionEnvironment, logStreamName, nodeFlags } from "./environment";
import type { ChildMessage, FunctionError, ParentMessage } from "./protocol";

export interface DeployOptions {
  /** Execution environments the function may have at once (Lambda's concurrency); 4 unless set. */
  maxConcurrency?: number;
  /** Every line a function process writes to stdout or stderr, as CloudWatch Logs would get it. */
  onLog?: (functionName: string, line: string) => void;
  /** The node that runs the functions; this process's own unless set. */
  nodeBinary?: string;
  /** The account in `context.invokedFunctionArn`. */
  accountId?: string;
}

export interface DeployedFunction {
  spec: FunctionSpec;
  /** A synchronous (RequestResponse) invocation. Rejects only when the function was closed. */
  invoke(event: unknown): Promise<InvokeOutcome>;
  /** Execution environments alive now, busy or idle. */
  readonly instances: number;
  /**
   * Kills every execution environment with SIGKILL, as a crash or a host failure would: the
   * invocations they were running fail with `Runtime.ExitError`, and the next ones start new
   * environments (cold starts). The function stays deployed.
   */
  crash(): Promise<void>;
  /**
   * Stops every execution environment where it stands (SIGSTOP), those started meanwhile too, as
   * a hung host or a function stuck on its own dependency: invocations get no answer until
   * `resume()` or their timeout, which ends the environment.
   */
  hang(): void;
  /** Lets hung environments go on (SIGCONT). */
  resume(): void;
  /** Kills every execution environment; invocations still waiting are rejected. */
  close(): Promise<void>;
}

/** Lambda gives a function's init phase 10 s of its own before the invocation's timeout applies. */
const INIT_LIMIT_MS = 10_000;

interface Job {
  requestId: string;
  event: string;
  coldStart: boolean;
  /** When the instance got the invocation (after init on a cold start). */
  startedAt: number;
  settled: boolean;
  resolve(outcome: InvokeOutcome): void;
  reject(error: Error): void;
}

interface RuntimeFiles {
  bootstrap: string;
  preload: string;
}

/**
 * Runs a deployed function's code package as Lambda does: each execution environment is its own
 * node process with the function's environment and nothing else of this process's, loading the
 * handler once and serving one invocation at a time. An idle environment is reused; a new one
 * (a cold start) is made while fewer than `maxConcurrency` exist; beyond that invocations wait.
 */
export function deployFunction(spec: FunctionSpec, network: TwinNetwork, options: DeployOptions = {}): DeployedFunction {
  const maxConcurrency = Math.max(1, options.maxConcurrency ?? 4);
  const onLog = options.onLog ?? (() => {});
  const nodeBinary = options.nodeBinary ?? process.execPath;
  const invokedFunctionArn = `arn:aws:lambda:${network.region}:${options.accountId ?? "123456789012"}:function:${spec.name}`;
  const files: Promise<RuntimeFiles> = Promise.all([compileModule(new URL("./bootstrap.ts", import.meta.url)), twinPreloadImport(network)]).then(
    ([bootstrap, preload]) => ({ bootstrap, preload }),
  );
  files.catch(() => {});

  const pool = new Set<Instance>();
  const queue: Job[] = [];
  let closed = false;
  let hung = false;

  function settle(job: Job, outcome: InvokeOutcome): void {
    if (job.settled) return;
    job.settled = true;
    job.resolve(outcome);
  }

  function failure(job: Job, error: FunctionError, extra: { timedOut?: true } = {}): InvokeOutcome {
    return { ok: false, ...error, durationMs: Date.now() - job.startedAt, coldStart: job.coldStart, ...extra };
  }

  function dispatch(): void {
    while (!closed && queue.length > 0) {
      const idle = [...pool].find((instance) => instance.state === "idle");
      if (idle) {
        idle.run(queue.shift()!);
      } else if (pool.size < maxConcurrency) {
        const job = queue.shift()!;
        job.coldStart = true;
        pool.add(new Instance(job));
      } else {
        return;
      }
    }
  }

  class Instance {
    state: "starting" | "idle" | "busy" | "dead" = "starting";
    readonly exited: Promise<void>;
    private child: ChildProcess | undefined;
    private job: Job | undefined;
    private timer: NodeJS.Timeout | undefined;
    private deadline = 0;
    /** An init error or a fatal error the process reported before it exits. */
    private reported: FunctionError | undefined;
    private markExited: () => void = () => {};

    constructor(first: Job) {
      this.job = first;
      first.startedAt = Date.now();
      this.exited = new Promise((done) => (this.markExited = done));
      this.timer = setTimeout(() => this.initOverran(), INIT_LIMIT_MS);
      files.then(
        (runtime) => this.spawn(runtime),
        (error: unknown) => {
          const job = this.job;
          if (job && !job.settled) {
            job.settled = true;
            job.reject(error instanceof Error ? error : new Error(String(error)));
          }
          this.gone();
        },
      );
    }

    run(job: Job): void {
      this.job = job;
      this.state = "busy";
      this.startTimer();
      this.send(job);
    }

    kill(): void {
      const child = this.child;
      if (!child) {
        this.gone();
        return;
      }
      // Whoever waits for the instance to end keeps this process alive until it has.
      child.ref();
      child.channel?.ref();
      for (const stream of [child.stdout, child.stderr]) (stream as Partial<Socket> | null)?.ref?.();
      this.signal("SIGKILL");
    }

    /** Sends a signal to the environment's process while it runs. */
    signal(signal: NodeJS.Signals): void {
      const child = this.child;
      if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    }

    /** Lambda retries a too-slow init within the invocation, so its timeout now runs. */
    private initOverran(): void {
      if (this.state === "starting") this.startTimer();
    }

    private startTimer(): void {
      if (this.deadline) return;
      const job = this.job!;
      job.startedAt = Date.now();
      this.deadline = job.startedAt + spec.timeoutSeconds * 1000;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.timedOut(), spec.timeoutSeconds * 1000);
    }

    private timedOut(): void {
      const job = this.job;
      this.state = "dead";
      if (job)
        settle(
          job,
          failure(job, { errorType: "Sandbox.Timedout", errorMessage: `Task timed out after ${spec.timeoutSeconds.toFixed(2)} seconds` }, { timedOut: true }),
        );
      this.kill();
    }

    private spawn(runtime: RuntimeFiles): void {
      if (closed || !pool.has(this)) {
        this.gone();
        return;
      }
      const env = functionEnvironment(spec, network, { nodeBinary, runtimeDir: dirname(runtime.bootstrap), logStreamName: logStreamName() });
      const child = spawn(nodeBinary, [...nodeFlags(spec.memoryMb), "--import", runtime.preload, runtime.bootstrap], {
        cwd: spec.codeDir,
        env,
        stdio: ["ignore", "pipe", "pipe", "ipc"],
        serialization: "json",
      });
      this.child = child;
      if (hung) child.kill("SIGSTOP");
      // An idle instance does not keep this process alive; a pending invocation's timer does.
      child.unref();
      child.channel?.unref();
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        (stream as Partial<Socket>).unref?.();
        createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => onLog(spec.name, line));
      }
      child.on("message", (message: ChildMessage) => this.received(message));
      child.on("error", (error) => {
        // Only a failed spawn leaves no pid; send errors are handled where they happen.
        if (child.pid === undefined) {
          this.reported ??= { errorType: "Runtime.ExitError", errorMessage: `Runtime failed to start: ${error.message}` };
          this.gone();
        }
      });
      // "close", not "exit": it comes after the last IPC message and log line.
      child.on("close", (code, signal) => {
        this.reported ??= {
          errorType: "Runtime.ExitError",
          errorMessage: signal
            ? `Runtime exited with error: signal: ${signal}`
            : code === 0
              ? "Runtime exited without providing a reason"
              : `Runtime exited with error: exit status ${code}`,
        };
        this.gone();
      });
    }

    private received(message: ChildMessage): void {
      const job = this.job;
      switch (message.type) {
        case "ready":
          if (this.state !== "starting" || !job) return;
          this.run(job);
          return;
        case "result":
        case "error":
          if (this.state !== "busy" || !job || message.requestId !== job.requestId) return;
          clearTimeout(this.timer);
          this.timer = undefined;
          this.deadline = 0;
          this.job = undefined;
          this.state = "idle";
          if (message.type === "result") {
            settle(job, { ok: true, result: JSON.parse(message.payload), durationMs: Date.now() - job.startedAt, coldStart: job.coldStart });
          } else {
            settle(job, failure(job, message));
          }
          dispatch();
          return;
        case "initError":
        case "fatal": {
          this.reported = { errorType: message.errorType, errorMessage: message.errorMessage };
          this.state = "dead";
          if (job) settle(job, failure(job, this.reported));
          return;
        }
      }
    }

    private send(job: Job): void {
      const message: ParentMessage = { type: "invoke", requestId: job.requestId, event: job.event, deadline: this.deadline, invokedFunctionArn };
      // A process that died in between is reported by its exit handler.
      if (this.child?.connected) this.child.send(message, (error) => void error);
    }

    /** The process is gone (or never started): its invocation fails and a queued one may start anew. */
    private gone(): void {
      if (!pool.has(this)) return;
      pool.delete(this);
      clearTimeout(this.timer);
      this.state = "dead";
      const job = this.job;
      this.job = undefined;
      if (job && !job.settled) {
        if (closed) {
          job.settled = true;
          job.reject(new Error(`${spec.name} was closed during the invocation`));
        } else {
          settle(job, failure(job, this.reported ?? { errorType: "Runtime.ExitError", errorMessage: "Runtime exited without providing a reason" }));
        }
      }
      this.markExited();
      dispatch();
    }
  }

  /** SIGKILL to every execution environment; resolves once each has exited. */
  const killEnvironments = async () => {
    const instances = [...pool];
    for (const instance of instances) instance.kill();
    await Promise.all(instances.map((instance) => instance.exited));
  };

  return {
    spec,
    invoke(event: unknown): Promise<InvokeOutcome> {
      if (closed) return Promise.reject(new Error(`${spec.name} is closed`));
      return new Promise((resolve, reject) => {
        // Lambda hands the function the payload parsed from JSON; no payload is `{}`.
        const text = JSON.stringify(event) ?? "{}";
        queue.push({ requestId: randomUUID(), event: text, coldStart: false, startedAt: Date.now(), settled: false, resolve, reject });
        dispatch();
      });
    },
    get instances() {
      return pool.size;
    },
    crash: killEnvironments,
    hang() {
      hung = true;
      for (const instance of pool) instance.signal("SIGSTOP");
    },
    resume() {
      hung = false;
      for (const instance of pool) instance.signal("SIGCONT");
    },
    async close() {
      closed = true;
      for (const job of queue.splice(0)) job.reject(new Error(`${spec.name} was closed before the invocation started`));
      await killEnvironments();
    },
  };
}
