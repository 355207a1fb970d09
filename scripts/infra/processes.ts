/**
 * The child processes of the local infrastructure (kafka.ts, nats.ts beside this file) and the
 * helpers they and the tests share: waiting for a condition, free ports, log tails.
 *
 * Attached children (the default) die with the calling process: `setpriv --pdeathsig SIGKILL` (Linux; the
 * kernel does it however the parent dies, also under Jest) plus exit/SIGINT/SIGTERM/SIGHUP handlers (plain
 * Node only: under Jest a test's `process` is a copy whose events never fire). Temp dirs this module
 * creates are removed at exit (plain Node) or by the next start after their owner process is gone (set
 * TICKSTREAM_KEEP_INFRA_DATA=1 to keep them for debugging).
 * `detached: true` (used by scripts/infra.ts) starts a process that outlives its parent instead.
 *
 * Used by Jest tests and compiled into dist/ for scripts/infra.ts, so it must not use Jest globals.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { setTimeout as delay } from "node:timers/promises";

export const HOST = "127.0.0.1";

export interface WaitForOptions {
  /** Overall deadline (default 30 s). An attempt still pending at the deadline counts as failed. */
  timeoutMs?: number;
  /** Pause between attempts (default 100 ms). */
  intervalMs?: number;
  /** Used in the timeout error: "Timed out after 30000 ms waiting for <what>". */
  what?: string;
  /** Aborting stops the wait at once and rejects with the signal's reason (e.g. "process exited"). */
  signal?: AbortSignal;
}

type Falsy = false | null | undefined | 0 | "";

/**
 * Polls `fn` until it returns a truthy value (which is resolved) or the deadline passes (rejects with
 * the last error `fn` threw, if any). Exceptions thrown by `fn` count as "not yet".
 */
export async function waitFor<T>(
  fn: () => T | Falsy | Promise<T | Falsy>,
  opts: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 100;
  const what = opts.what ?? "condition";
  const deadline = Date.now() + timeoutMs;
  const signal = opts.signal;
  let lastError: unknown;
  let attempts = 0;

  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    const remaining = deadline - Date.now();
    if (remaining <= 0 && attempts > 0) break;
    attempts++;
    try {
      const value = await raceDeadline(Promise.resolve().then(fn), Math.max(remaining, 1), signal);
      if (value) return value;
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      await delay(Math.min(intervalMs, left), undefined, signal ? { signal } : undefined);
    } catch {
      throw abortError(signal);
    }
  }
  const why = lastError === undefined ? "" : `: last error: ${errorMessage(lastError)}`;
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what} (${attempts} attempts)${why}`,
  );
}

async function raceDeadline<T>(
  p: Promise<T>,
  ms: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const guards = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`attempt still pending after ${ms} ms`)), ms);
    if (signal) {
      onAbort = () => reject(abortError(signal));
      signal.addEventListener("abort", onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([p, guards]);
  } finally {
    if (timer) clearTimeout(timer);
    if (signal && onAbort) signal.removeEventListener("abort", onAbort);
  }
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close). */
export function freePort(host: string = HOST): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() =>
        port > 0 ? resolve(port) : reject(new Error("could not read the bound port")),
      );
    });
  });
}

/** True if something accepts TCP connections on host:port within `timeoutMs`. */
export function probePort(port: number, host: string = HOST, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/** The last `lines` lines of a text file ("" if it does not exist). Reads at most the last 64 KiB. */
export function tailFile(file: string, lines = 40): string {
  try {
    const fd = fs.openSync(file, "r");
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf
        .toString("utf8")
        .split("\n")
        .slice(-lines - 1)
        .join("\n")
        .trimEnd();
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return "";
  }
}

/** The ERROR/FATAL lines of a log4j log (with the line after each, usually the exception), at most `max`. */
export function errorLines(file: string, max = 12): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
  const lines = text.split("\n");
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (/\] (ERROR|FATAL) /.test(line)) {
      out.push(line);
      const next = lines[i + 1];
      if (next !== undefined && !next.startsWith("[")) out.push(next);
    }
  });
  return out.slice(0, max).join("\n");
}

/** The repository root: the nearest ancestor of this file holding scripts/infra/kafka/pom.xml. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, "scripts", "infra", "kafka", "pom.xml"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error(`repo root (with scripts/infra/kafka/pom.xml) not found above ${__dirname}`);
    dir = parent;
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export interface Launched {
  child: ChildProcess;
  exited: Promise<ExitInfo>;
  isRunning(): boolean;
}

const liveChildren = new Set<ChildProcess>();
const ownedTempDirs = new Set<string>();
let exitHandlersInstalled = false;
let setprivAvailable: boolean | undefined;

function killAllSync(): void {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on("exit", () => {
    killAllSync();
    if (keepData()) return;
    for (const dir of ownedTempDirs) {
      try {
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
      } catch {
        // best effort
      }
    }
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = (): void => {
      killAllSync();
      process.removeListener(sig, handler);
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

function hasSetpriv(): boolean {
  if (setprivAvailable === undefined) {
    setprivAvailable =
      process.platform === "linux" &&
      ["/usr/bin/setpriv", "/bin/setpriv"].some((p) => fs.existsSync(p));
  }
  return setprivAvailable;
}

export interface LaunchSpec {
  command: string;
  args: string[];
  cwd: string;
  /** stdout and stderr are appended here. */
  outFile: string;
  detached: boolean;
}

export function launch(spec: LaunchSpec): Launched {
  fs.mkdirSync(path.dirname(spec.outFile), { recursive: true });
  const out = fs.openSync(spec.outFile, "a");
  let command = spec.command;
  let args = spec.args;
  if (!spec.detached && hasSetpriv()) {
    // The kernel SIGKILLs the child when its parent dies, however the parent dies. setpriv execs, so the
    // pid stays the one of the real server.
    args = ["--pdeathsig", "SIGKILL", "--", command, ...args];
    command = "setpriv";
  }
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: spec.cwd,
      detached: spec.detached,
      stdio: ["ignore", out, out],
      env: process.env,
    });
  } finally {
    fs.closeSync(out);
  }
  let running = true;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once("error", (error) => {
      running = false;
      liveChildren.delete(child);
      resolve({ code: null, signal: null, error });
    });
    child.once("exit", (code, signal) => {
      running = false;
      liveChildren.delete(child);
      resolve({ code, signal });
    });
  });
  // Never keep the event loop alive for a server: an attached one dies with this process anyway (and a test
  // that forgets stop() ends instead of hanging).
  child.unref();
  if (!spec.detached) {
    installExitHandlers();
    liveChildren.add(child);
  }
  return { child, exited, isRunning: () => running };
}

export function describeExit(e: ExitInfo): string {
  if (e.error) return `failed to start: ${e.error.message}`;
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${String(e.code)}`;
}

/** Resolves once `p` has exited, or with "timeout"; a timer keeps the event loop alive meanwhile. */
function exitWithin(p: Launched, timeoutMs: number): Promise<ExitInfo | "timeout"> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve("timeout"), timeoutMs);
    void p.exited.then((e) => {
      clearTimeout(t);
      resolve(e);
    });
  });
}

/** `signal` (default SIGTERM), then SIGKILL if it has not exited within `timeoutMs`. */
export async function terminate(
  p: Launched,
  timeoutMs: number,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (p.isRunning()) {
    p.child.kill(signal);
    if ((await exitWithin(p, timeoutMs)) === "timeout") p.child.kill("SIGKILL");
  }
  if ((await exitWithin(p, 30_000)) === "timeout") {
    throw new Error(`pid ${String(p.child.pid)} did not exit after SIGKILL`);
  }
}

/** Whether a pid is a live (non-zombie) process. */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false; // 0 / negatives would address process groups
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** The command line of a pid (Linux /proc), or undefined. */
export function pidCommandLine(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return undefined;
  }
}

/** Stops a process that is not our child (e.g. from a pid file): SIGTERM, then SIGKILL after `timeoutMs`. */
export async function stopPid(
  pid: number,
  timeoutMs = 30_000,
): Promise<"stopped" | "killed" | "not-running"> {
  if (!isPidAlive(pid)) return "not-running";
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return "not-running";
  }
  try {
    await waitFor(() => !isPidAlive(pid), {
      timeoutMs,
      intervalMs: 100,
      what: `pid ${pid} to exit`,
    });
    return "stopped";
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone in between
    }
    await waitFor(() => !isPidAlive(pid), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: `pid ${pid} to die`,
    });
    return "killed";
  }
}

const TEMP_PREFIXES = ["tickstream-kafka-", "tickstream-nats-"];
const keepData = (): boolean => process.env.TICKSTREAM_KEEP_INFRA_DATA === "1";
let sweptStaleTempDirs = false;

/**
 * Removes temp dirs left by earlier processes that are gone. Exit handlers cannot do it under Jest: the
 * `process` Jest gives a test is a copy whose "exit" event never fires. Dirs marked `.keep` stay.
 */
function sweepStaleTempDirs(): void {
  if (sweptStaleTempDirs) return;
  sweptStaleTempDirs = true;
  const tmp = os.tmpdir();
  let entries: string[];
  try {
    entries = fs.readdirSync(tmp);
  } catch {
    return;
  }
  for (const name of entries) {
    if (!TEMP_PREFIXES.some((p) => name.startsWith(p))) continue;
    const dir = path.join(tmp, name);
    try {
      if (fs.existsSync(path.join(dir, ".keep"))) continue;
      const owner = Number.parseInt(fs.readFileSync(path.join(dir, ".owner"), "utf8"), 10);
      if (Number.isInteger(owner) && owner > 0 && isPidAlive(owner)) continue;
    } catch {
      // No .owner (yet): only remove it if it is not being created right now.
      const age = Date.now() - (fs.statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age < 60_000) continue;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function makeTempDir(prefix: string): string {
  sweepStaleTempDirs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.writeFileSync(path.join(dir, ".owner"), `${process.pid}\n`);
  if (keepData()) fs.writeFileSync(path.join(dir, ".keep"), "TICKSTREAM_KEEP_INFRA_DATA=1\n");
  ownedTempDirs.add(dir);
  installExitHandlers();
  return dir;
}

/** Runs a command to its end; stdout and stderr are collected together. */
export function run(
  command: string,
  args: string[],
  opts: { cwd?: string } = {},
): Promise<{ code: number | null; output: string; error?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => chunks.push(c));
    child.once("error", (error) =>
      resolve({ code: null, output: Buffer.concat(chunks).toString(), error }),
    );
    child.once("close", (code) => resolve({ code, output: Buffer.concat(chunks).toString() }));
  });
}
