/**
 * A private PostgreSQL server, for tests and local runs: its own cluster (`initdb`) in a temporary
 * directory, on a free TCP port on 127.0.0.1, with its unix socket in that directory, trust
 * authentication for the `postgres` user. Uses Debian's `postgresql` package
 * (`bash scripts/infra/install-system-deps.sh postgresql`); no system service is involved.
 *
 * PostgreSQL refuses to run as root. When this process is root, the directory is handed to the
 * `postgres` system user and `initdb` and the server are spawned with its uid and gid.
 *
 * The server is this process's child: `stop()` shuts it down (fast or immediate), `start()` starts
 * it again on the same port and data, `destroy()` stops it and removes the directory.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  chownSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "pg";
import { freePort, tailFile, waitFor } from "./processes";

export interface StartPostgresOptions {
  /** TCP port (default: a free one). */
  port?: number;
  /** Directory holding the bin files (default: the newest `/usr/lib/postgresql/<v>/bin`). */
  binDir?: string;
  /** Server settings passed as `-c name=value`. */
  settings?: Record<string, string>;
  /** System user to run as when this process is root (default `postgres`). */
  runAs?: string;
  timeoutMs?: number;
}

export interface PostgresHandle {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** The temporary directory: `data/` (the cluster), the socket, `postgres.log`. */
  dir: string;
  running(): boolean;
  /** Shuts the server down: `fast` (SIGINT, clean) or `immediate` (SIGQUIT, crash-like). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts the server again (same port, same data) and waits until it accepts queries. */
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
  /** The end of the server's log. */
  log(lines?: number): string;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGQUIT");
});

/** The newest installed PostgreSQL's bin directory. */
export function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const found = versions[0];
  if (found === undefined)
    throw new Error(
      "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): run `bash scripts/infra/install-system-deps.sh postgresql`",
    );
  return path.join(root, found, "bin");
}

/** uid and gid of a system user, from /etc/passwd. */
function systemUser(name: string): { uid: number; gid: number } {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f[2] !== undefined && f[3] !== undefined)
      return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`PostgreSQL refuses to run as root, and there is no "${name}" user to run it as`);
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresHandle> {
  const binDir = opts.binDir ?? postgresBinDir();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), "tickstream-pg-"));
  const data = path.join(dir, "data");
  const logFile = path.join(dir, "postgres.log");
  const asUser = process.getuid?.() === 0 ? systemUser(opts.runAs ?? "postgres") : undefined;
  if (asUser) chownSync(dir, asUser.uid, asUser.gid);
  const spawnAs = asUser ? { uid: asUser.uid, gid: asUser.gid } : {};
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C", LC_ALL: "C" };

  const init = spawnSync(
    path.join(binDir, "initdb"),
    ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
    { cwd: dir, env, encoding: "utf8", timeout: timeoutMs, ...spawnAs },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `initdb failed (${init.status ?? init.signal ?? init.error?.message}): ${init.stderr}`,
    );
  }

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const settings = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: dir,
    ...opts.settings,
  };
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const running = () => child !== null && child.exitCode === null && child.signalCode === null;

  async function start(): Promise<void> {
    if (running()) return;
    const out = openSync(logFile, "a");
    if (asUser) chownSync(logFile, asUser.uid, asUser.gid);
    const args = ["-D", data, "-p", String(port)];
    for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
    const c = spawn(path.join(binDir, "postgres"), args, {
      cwd: dir,
      env,
      stdio: ["ignore", out, out],
      ...spawnAs,
    });
    child = c;
    live.add(c);
    // A server that dies while starting ends the wait at once, with its log.
    const died = new AbortController();
    exited = new Promise((resolve) =>
      c.once("exit", (code, signal) => {
        live.delete(c);
        died.abort(new Error(`postgres exited (${code ?? signal}): ${tailFile(logFile)}`));
        resolve();
      }),
    );
    await waitFor(
      async () => {
        const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
        client.on("error", () => undefined);
        try {
          await client.connect();
          await client.query("SELECT 1");
          return true;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      { timeoutMs, intervalMs: 100, what: `PostgreSQL on port ${port}`, signal: died.signal },
    );
  }

  async function stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    if (!running() || child === null) return;
    child.kill(mode === "fast" ? "SIGINT" : "SIGQUIT");
    await exited;
  }

  try {
    await start();
  } catch (err: unknown) {
    await stop("immediate");
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url,
    port,
    dir,
    running,
    stop,
    start,
    async destroy() {
      await stop("fast");
      rmSync(dir, { recursive: true, force: true });
    },
    log: (lines = 40) => tailFile(logFile, lines),
  };
}
