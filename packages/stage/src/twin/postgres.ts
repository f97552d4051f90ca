import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/**
 * The twin's Neon project: a PostgreSQL server of its own, made for one twin and removed with
 * it, so a stage's roles and databases (cluster-wide names like `auth_app`) never meet another
 * twin's, a developer's or the test suite's. It starts as a Neon branch does: an owner role
 * with CREATEROLE and CREATEDB (not a superuser) and its database `neondb`; password
 * authentication (SCRAM) on TCP, so a wrong runtime-role password fails as on Neon.
 */

export interface TwinPostgres {
  host: string;
  port: number;
  owner: { user: string; password: string; database: string };
  /** The superuser `postgres` connects over this socket directory (trust): tests inspect the stage with it. */
  socket: string;
  /** Shuts the server down (fast shutdown: open connections are cut) and keeps its data: the database has gone away. */
  halt(): Promise<void>;
  /** Starts the server again on the same port and data, after `halt`. */
  resume(): Promise<void>;
  /** Stops the server and its backends where they stand (SIGSTOP): connections stay open and nothing answers. */
  freeze(): void;
  /** Lets a frozen server run on (SIGCONT). */
  thaw(): void;
  stop(): Promise<void>;
}

/** The directory holding `initdb` and `postgres`, or undefined on a machine without them. */
export function postgresBinaries(): string | undefined {
  try {
    const bindir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    if (existsSync(join(bindir, "initdb"))) return bindir;
  } catch {
    // Debian keeps the server binaries out of PATH.
  }
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], "bin") : undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** PostgreSQL refuses to run as root: under root the server runs as the `postgres` user. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
}

export async function startTwinPostgres(options: { ownerPassword: string }): Promise<TwinPostgres> {
  const bin = postgresBinaries();
  if (!bin) throw new Error("the stage twin needs the PostgreSQL server binaries (initdb, postgres): apt-get install postgresql");
  const dir = mkdtempSync(join(tmpdir(), "enclave-twin-pg-"));
  const data = join(dir, "data");
  const socket = join(dir, "socket");
  mkdirSync(socket);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
    chownSync(socket, uid, gid);
  }
  const [initdb, initArgs] = asServerUser(join(bin, "initdb"), [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--no-sync",
    "-E",
    "UTF8",
    "--locale=C",
  ]);
  execFileSync(initdb, initArgs, { stdio: "ignore" });
  const port = await freePort();
  const [postgres, serverArgs] = asServerUser(join(bin, "postgres"), [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    socket,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
    "-c",
    "max_connections=200",
  ]);
  let log = "";
  let server: ChildProcess;
  const startServer = async () => {
    server = spawn(postgres, serverArgs, { stdio: ["ignore", "ignore", "pipe"] });
    server.stderr?.on("data", (chunk) => (log = (log + chunk).slice(-4000)));
    for (let attempt = 0; ; attempt++) {
      const probe = new pg.Client({ host: socket, port, user: "postgres", database: "postgres" });
      try {
        await probe.connect();
        await probe.end();
        return;
      } catch (error) {
        if (attempt > 100 || server.exitCode !== null) throw new Error(`the twin's PostgreSQL did not start: ${(error as Error).message}\n${log}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  /** The postmaster's own pid: under root `server` is runuser, which does not pass signals on. */
  const postmasterPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  /** The postmaster and its backends: every process whose parent it is. */
  const serverProcesses = (): number[] => {
    const pid = postmasterPid();
    if (pid === undefined || !alive(pid)) return [];
    const children = readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .filter((entry) => {
        try {
          // The parent pid is the second field after the command name, which ends at the last ')'.
          const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
          return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
        } catch {
          return false;
        }
      })
      .map(Number);
    return [pid, ...children];
  };
  const signalAll = (pids: number[], signal: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // Gone meanwhile.
      }
    }
  };
  const shutDown = async () => {
    const pid = postmasterPid();
    if (pid === undefined || !alive(pid)) return;
    // A frozen server handles no signal but SIGCONT's.
    signalAll(serverProcesses().reverse(), "SIGCONT");
    // SIGINT: PostgreSQL's fast shutdown (disconnects clients, no waiting on them).
    process.kill(pid, "SIGINT");
    for (let waited = 0; alive(pid) && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    if (alive(pid)) process.kill(pid, "SIGKILL");
    if (server.exitCode === null && server.signalCode === null)
      await Promise.race([new Promise((resolve) => server.once("exit", resolve)), new Promise((resolve) => setTimeout(resolve, 5000))]);
  };
  await startServer();
  const admin = new pg.Client({ host: socket, port, user: "postgres", database: "postgres" });
  await admin.connect();
  const owner = { user: "neondb_owner", password: options.ownerPassword, database: "neondb" };
  try {
    await admin.query(`create role ${owner.user} login createrole createdb password '${owner.password.replaceAll("'", "''")}'`);
    await admin.query(`create database ${owner.database} owner ${owner.user}`);
  } finally {
    await admin.end();
  }
  writeFileSync(join(dir, "README"), "A stage twin's PostgreSQL server; removed when the twin stops.\n");
  return {
    host: "127.0.0.1",
    port,
    owner,
    socket,
    halt: shutDown,
    // The postmaster first, so it forks no backend the list would miss; continued last.
    freeze: () => signalAll(serverProcesses(), "SIGSTOP"),
    thaw: () => signalAll(serverProcesses().reverse(), "SIGCONT"),
    async resume() {
      const pid = postmasterPid();
      if (pid !== undefined && alive(pid)) return;
      await startServer();
    },
    async stop() {
      await shutDown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
