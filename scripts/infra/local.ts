/**
 * Real local infrastructure for development, integration tests and CI: a single-node KRaft Kafka broker
 * (jars from Maven Central, run on the local JVM) and a NATS server (Debian's `nats-server`). No Docker.
 *
 *   const kafka = await startKafka();            // own free ports, own temp data dir
 *   const nats = await startNats({ jetstream: true });
 *   ... kafka.brokers ("127.0.0.1:PORT"), nats.url ("nats://127.0.0.1:PORT") ...
 *   await kafka.restart();                        // same ports, same data
 *   await kafka.stop(); await nats.stop();
 *
 * Attached children (the default) die with the calling process: `setpriv --pdeathsig SIGKILL` (Linux; the
 * kernel does it however the parent dies, also under Jest) plus exit/SIGINT/SIGTERM/SIGHUP handlers (plain
 * Node only: under Jest a test's `process` is a copy whose events never fire). Temp dirs this module
 * creates are removed at exit (plain Node) or by the next start after their owner process is gone (set
 * TICKSTREAM_KEEP_INFRA_DATA=1 to keep them for debugging).
 * `detached: true` (used by scripts/infra.ts) starts a process that outlives its parent instead.
 *
 * Needs: java (17+) and mvn on PATH (or JAVA_HOME), `nats-server`; see scripts/infra/install-system-deps.sh.
 * Used by Jest tests and compiled into dist/ for scripts/infra.ts, so it must not use Jest globals.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { Kafka, logLevel, type Admin } from "kafkajs";

const HOST = "127.0.0.1";

// ───────────────────────────── generic helpers ─────────────────────────────

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

// ───────────────────────────── process management ─────────────────────────────

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

interface Launched {
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

interface LaunchSpec {
  command: string;
  args: string[];
  cwd: string;
  /** stdout and stderr are appended here. */
  outFile: string;
  detached: boolean;
}

function launch(spec: LaunchSpec): Launched {
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

function describeExit(e: ExitInfo): string {
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
async function terminate(
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

function makeTempDir(prefix: string): string {
  sweepStaleTempDirs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.writeFileSync(path.join(dir, ".owner"), `${process.pid}\n`);
  if (keepData()) fs.writeFileSync(path.join(dir, ".keep"), "TICKSTREAM_KEEP_INFRA_DATA=1\n");
  ownedTempDirs.add(dir);
  installExitHandlers();
  return dir;
}

function run(
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

// ───────────────────────────── Kafka ─────────────────────────────

let jarsPromise: Promise<string> | undefined;

/**
 * Makes sure the Kafka broker's jars are in `.infra/kafka/lib` (runs Maven on scripts/infra/kafka/pom.xml
 * once; skipped while the jars match the pom) and returns that directory. Safe to call concurrently,
 * also from several processes (a lock directory serialises Maven runs).
 */
export function ensureKafkaJars(): Promise<string> {
  jarsPromise ??= fetchKafkaJars().catch((err: unknown) => {
    jarsPromise = undefined;
    throw err;
  });
  return jarsPromise;
}

async function fetchKafkaJars(): Promise<string> {
  const root = repoRoot();
  const pom = path.join(root, "scripts", "infra", "kafka", "pom.xml");
  const lib = path.join(root, ".infra", "kafka", "lib");
  const stampFile = path.join(lib, ".complete");
  const stamp = createHash("sha256").update(fs.readFileSync(pom)).digest("hex");
  const isComplete = (): boolean => {
    try {
      return fs.readFileSync(stampFile, "utf8").trim() === stamp;
    } catch {
      return false;
    }
  };
  if (isComplete()) return lib;

  const lock = `${lib}.lock`;
  fs.mkdirSync(path.dirname(lib), { recursive: true });
  const holderFile = path.join(lock, "pid");
  const held = await waitFor(
    (): "complete" | "held" | false => {
      if (isComplete()) return "complete";
      try {
        fs.mkdirSync(lock);
        fs.writeFileSync(holderFile, `${process.pid}\n`);
        return "held";
      } catch {
        // Held by another process: wait for it, or take over if that process is gone.
        let holder = Number.NaN;
        try {
          holder = Number.parseInt(fs.readFileSync(holderFile, "utf8"), 10);
        } catch {
          // just created, pid not written yet (or from a crashed process: the age check below)
        }
        const age =
          Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
        if (
          (Number.isInteger(holder) && !isPidAlive(holder)) ||
          (Number.isNaN(holder) && age > 60_000)
        ) {
          fs.rmSync(lock, { recursive: true, force: true });
        }
        return false;
      }
    },
    { timeoutMs: 15 * 60_000, intervalMs: 250, what: `the Maven lock ${lock}` },
  );
  if (held === "complete") return lib;
  try {
    if (isComplete()) return lib;
    fs.rmSync(lib, { recursive: true, force: true });
    process.stderr.write(
      `[infra] fetching the Kafka broker jars with Maven into ${lib} (one-off)\n`,
    );
    const args = [
      "-B",
      "-q",
      "-Dstyle.color=never",
      "-f",
      pom,
      "dependency:copy-dependencies",
      "-DincludeScope=runtime",
      `-Dkafka.lib.dir=${lib}`,
    ];
    const res = await run("mvn", args, { cwd: path.dirname(pom) });
    if (res.error) {
      throw new Error(
        `could not run mvn (${res.error.message}); install Maven and Java 17: scripts/infra/install-system-deps.sh`,
      );
    }
    if (
      res.code !== 0 ||
      !fs.existsSync(lib) ||
      !fs.readdirSync(lib).some((f) => f.startsWith("kafka_2.13-"))
    ) {
      throw new Error(
        `mvn ${args.join(" ")} failed (exit ${String(res.code)}):\n${res.output.slice(-4000)}`,
      );
    }
    fs.writeFileSync(stampFile, `${stamp}\n`);
    return lib;
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function javaCommand(): string {
  const home = process.env.JAVA_HOME;
  if (home) {
    const java = path.join(home, "bin", "java");
    if (fs.existsSync(java)) return java;
  }
  return "java";
}

/** The cluster.id in a formatted log dir's meta.properties. */
function clusterIdOf(logDir: string): string | undefined {
  try {
    const meta = fs.readFileSync(path.join(logDir, "meta.properties"), "utf8");
    return /^cluster\.id=(.+)$/m.exec(meta)?.[1]?.trim();
  } catch {
    return undefined;
  }
}

/**
 * 16 random bytes, base64url without padding: the format Kafka's StorageTool wants (22 chars).
 * An id starting with "-" would be read by StorageTool's argument parser as an option (1 in 32
 * ids), so such ids are drawn again.
 */
export function randomKafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

export interface StartKafkaOptions {
  /** PLAINTEXT listener port on 127.0.0.1 (default: a free port). */
  port?: number;
  /** CONTROLLER listener port on 127.0.0.1 (default: a free port). */
  controllerPort?: number;
  /** Broker home: server.properties, kafka-logs/ (data), logs/ (server.log, stdout.log). Default: a new temp dir. */
  dataDir?: string;
  /** `num.partitions` for topics created without an explicit count (default 1). */
  numPartitions?: number;
  /** Outlive this process (scripts/infra.ts). Default false: the broker dies with this process. */
  detached?: boolean;
  /** Extra/overriding server.properties entries, e.g. { "log.message.timestamp.after.max.ms": "86400000" }. */
  config?: Record<string, string | number | boolean>;
  /** Readiness deadline (default 120 s). */
  startTimeoutMs?: number;
  /** Called with the server's pid right after it is spawned (before it is ready), on every (re)start. */
  onSpawn?: (pid: number) => void;
  /** JVM heap (default 512 MB). */
  heapMb?: number;
  /**
   * C1-only JIT (-XX:TieredStopAtLevel=1): starts noticeably faster on a small or busy machine, but peak
   * throughput is lower. Default: true when attached (tests), false when detached (dev broker, benchmarks).
   */
  fastStartup?: boolean;
  /** Extra JVM options (appended; also from the env var TICKSTREAM_KAFKA_JVM_OPTS, space-separated). */
  jvmOptions?: string[];
}

export interface KafkaHandle {
  /** "127.0.0.1:PORT", for kafkajs `brokers: [brokers]`, kcat `-b`, KAFKA_BROKERS. */
  brokers: string;
  port: number;
  controllerPort: number;
  dataDir: string;
  /** log4j2 server log (INFO). */
  logFile: string;
  /** Current broker pid (undefined while stopped). */
  readonly pid: number | undefined;
  /** Controlled shutdown (SIGTERM), SIGKILL after 30 s. Keeps the data. */
  stop(): Promise<void>;
  /** SIGKILL now (crash). The data stays; `restart()` recovers from it. */
  kill(): void;
  /** Stops (if running) and starts again on the same ports with the same data; resolves when ready. */
  restart(): Promise<void>;
}

/** The server.properties of a single-node KRaft broker+controller on 127.0.0.1. */
export function kafkaServerProperties(o: {
  port: number;
  controllerPort: number;
  logDir: string;
  numPartitions: number;
  config?: Record<string, string | number | boolean>;
}): string {
  const props: Record<string, string | number | boolean> = {
    "process.roles": "broker,controller",
    "node.id": 1,
    "controller.quorum.voters": `1@${HOST}:${o.controllerPort}`,
    listeners: `PLAINTEXT://${HOST}:${o.port},CONTROLLER://${HOST}:${o.controllerPort}`,
    "advertised.listeners": `PLAINTEXT://${HOST}:${o.port}`,
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "log.dirs": o.logDir,
    "num.partitions": o.numPartitions,
    "default.replication.factor": 1,
    "min.insync.replicas": 1,
    "auto.create.topics.enable": false,
    // Single node: every internal topic has replication factor 1. One partition each is plenty locally and
    // makes the first consumer group / transaction / share group start faster (defaults are 50).
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 1,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "transaction.state.log.num.partitions": 1,
    "share.coordinator.state.topic.replication.factor": 1,
    "share.coordinator.state.topic.min.isr": 1,
    "share.coordinator.state.topic.num.partitions": 1,
    // Consumers join at once instead of waiting 3 s for more members.
    "group.initial.rebalance.delay.ms": 0,
    // After a SIGKILL the restarted broker cannot register until its previous session expires
    // (default 9 s). One JVM, no network between broker and controller: a short session is safe.
    "broker.session.timeout.ms": 3000,
    "broker.heartbeat.interval.ms": 500,
    // Kafka 4.x default, stated on purpose: records stamped more than 1 h in the future are rejected
    // (INVALID_TIMESTAMP). Same as production and the Docker image; override via `config` if needed.
    "log.message.timestamp.after.max.ms": 3_600_000,
    // Small machine: fewer threads. log.flush.* stay at their defaults (the OS page cache decides).
    "num.network.threads": 2,
    "num.io.threads": 4,
    "num.recovery.threads.per.data.dir": 1,
    "log.retention.hours": 168,
    "log.segment.bytes": 128 * 1024 * 1024,
    ...o.config,
  };
  return (
    "# Written by src/infra/local.ts on every start; edits are overwritten.\n" +
    Object.entries(props)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join("\n") +
    "\n"
  );
}

function probeAdmin(brokers: string, timeoutMs: number): Admin {
  return new Kafka({
    clientId: "tickstream-infra-probe",
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: Math.min(timeoutMs, 1000),
    requestTimeout: timeoutMs,
  }).admin({ retry: { retries: 0 } });
}

/**
 * One readiness probe: a kafkajs admin client connects and `describeCluster` lists a broker. With
 * `warmGroupCoordinator`, it also looks up a group coordinator, which makes the broker create and load
 * `__consumer_offsets`; otherwise a test's first consumer logs "The group coordinator is not available"
 * while that happens.
 */
export async function kafkaDescribeCluster(
  brokers: string,
  opts: { timeoutMs?: number; warmGroupCoordinator?: boolean } = {},
): Promise<{ clusterId: string; brokers: number }> {
  const admin = probeAdmin(brokers, opts.timeoutMs ?? 3000);
  try {
    await admin.connect();
    const c = await admin.describeCluster();
    if (c.brokers.length === 0) throw new Error("no broker registered yet");
    if (opts.warmGroupCoordinator) await admin.describeGroups(["tickstream-infra-probe"]);
    return { clusterId: c.clusterId, brokers: c.brokers.length };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Starts a single-node KRaft Kafka broker and resolves once a kafkajs admin client can describe the cluster
 * and the group coordinator answers.
 */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaHandle> {
  const lib = await ensureKafkaJars();
  const port = opts.port ?? (await freePort());
  let controllerPort = opts.controllerPort ?? (await freePort());
  while (controllerPort === port) controllerPort = await freePort();
  const dataDir = path.resolve(opts.dataDir ?? makeTempDir("tickstream-kafka-"));
  const logDir = path.join(dataDir, "kafka-logs");
  const logsDir = path.join(dataDir, "logs");
  const propsFile = path.join(dataDir, "server.properties");
  const logFile = path.join(logsDir, "server.log");
  const outFile = path.join(logsDir, "stdout.log");
  const detached = opts.detached ?? false;
  const java = javaCommand();
  const log4j = path.join(repoRoot(), "scripts", "infra", "kafka", "log4j2.properties");
  const fastJit = "-XX:TieredStopAtLevel=1";
  const jvm = [
    `-Xmx${opts.heapMb ?? 512}m`,
    `-Xms${Math.min(opts.heapMb ?? 512, 256)}m`,
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
    `-Dlog4j2.configurationFile=${log4j}`,
    `-Dkafka.logs.dir=${logsDir}`,
    ...(process.env.TICKSTREAM_KAFKA_JVM_OPTS ?? "").split(" ").filter((o) => o.length > 0),
    ...(opts.jvmOptions ?? []),
    "-cp",
    `${lib}/*`, // expanded by java itself (no shell involved)
  ];

  fs.mkdirSync(logsDir, { recursive: true });
  fs.writeFileSync(
    propsFile,
    kafkaServerProperties({
      port,
      controllerPort,
      logDir,
      numPartitions: opts.numPartitions ?? 1,
      config: opts.config,
    }),
  );

  // Format the storage once per data dir (restart keeps it).
  if (!fs.existsSync(path.join(logDir, "meta.properties"))) {
    const clusterId = randomKafkaClusterId();
    const res = await run(
      java,
      [
        fastJit,
        ...jvm,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        clusterId,
        "-c",
        propsFile,
        "--ignore-formatted",
      ],
      { cwd: dataDir },
    );
    if (res.code !== 0) {
      throw new Error(
        `Kafka StorageTool format failed (${res.error ? res.error.message : `exit ${String(res.code)}`}):\n` +
          `${res.output.slice(-4000)}\n${tailFile(logFile)}`,
      );
    }
  }

  let proc: Launched | undefined;
  const brokers = `${HOST}:${port}`;

  const launchBroker = async (): Promise<void> => {
    fs.appendFileSync(outFile, `\n==== ${new Date().toISOString()} starting kafka.Kafka ====\n`);
    const fast = (opts.fastStartup ?? !detached) ? [fastJit] : [];
    const p = launch({
      command: java,
      args: [...fast, ...jvm, "kafka.Kafka", propsFile],
      cwd: dataDir,
      outFile,
      detached,
    });
    proc = p;
    if (p.child.pid !== undefined) opts.onSpawn?.(p.child.pid);
    const aborter = new AbortController();
    void p.exited.then((e) =>
      aborter.abort(
        new Error(
          `Kafka broker ${describeExit(e)} during startup (data ${dataDir}).\n` +
            `--- errors in ${logFile} ---\n${errorLines(logFile)}\n` +
            `--- ${outFile} ---\n${tailFile(outFile, 10)}\n--- tail of ${logFile} ---\n${tailFile(logFile, 10)}`,
        ),
      ),
    );
    try {
      await waitFor(
        async () => {
          if (!(await probePort(port, HOST, 500))) return false;
          const c = await kafkaDescribeCluster(brokers, { warmGroupCoordinator: true });
          // Our broker, not another one on that port: same cluster id as our formatted storage.
          if (c.clusterId !== clusterIdOf(logDir)) {
            throw new Error(`${brokers} answers with cluster id ${c.clusterId}, not ours`);
          }
          return true;
        },
        {
          timeoutMs: opts.startTimeoutMs ?? 120_000,
          intervalMs: 200,
          what: `Kafka broker on ${brokers} (log: ${logFile})`,
          signal: aborter.signal,
        },
      );
    } catch (err) {
      await terminate(p, 10_000, "SIGKILL");
      if (err instanceof Error && !aborter.signal.aborted) {
        err.message += `\n--- ${logFile} ---\n${tailFile(logFile, 40)}`;
      }
      throw err;
    }
  };

  const stop = async (): Promise<void> => {
    if (proc) await terminate(proc, 30_000);
  };

  await launchBroker();

  return {
    brokers,
    port,
    controllerPort,
    dataDir,
    logFile,
    get pid() {
      return proc?.isRunning() ? proc.child.pid : undefined;
    },
    stop,
    kill() {
      if (proc?.isRunning()) proc.child.kill("SIGKILL");
    },
    async restart() {
      await stop();
      await launchBroker();
    },
  };
}

// ───────────────────────────── NATS ─────────────────────────────

export interface StartNatsOptions {
  /** Client port on 127.0.0.1 (default: a free port). */
  port?: number;
  /** Enable JetStream (`-js`), storing in `storeDir` (default false). */
  jetstream?: boolean;
  /** JetStream store dir (`-sd`); also where nats-server.log goes. Default: a new temp dir. */
  storeDir?: string;
  /** Outlive this process (scripts/infra.ts). */
  detached?: boolean;
  /** Readiness deadline (default 20 s). */
  startTimeoutMs?: number;
  /** Called with the server's pid right after it is spawned (before it is ready), on every (re)start. */
  onSpawn?: (pid: number) => void;
}

export interface NatsHandle {
  /** "nats://127.0.0.1:PORT" (Moleculer TRANSPORTER). */
  url: string;
  port: number;
  storeDir: string;
  logFile: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
  kill(): void;
  restart(): Promise<void>;
}

export interface NatsServerInfo {
  server_id: string;
  version: string;
  jetstream?: boolean;
  max_payload: number;
  [key: string]: unknown;
}

/** Connects over TCP and reads the server's `INFO {...}` greeting (the NATS protocol's first line). */
export function readNatsInfo(
  port: number,
  host: string = HOST,
  timeoutMs = 2000,
): Promise<NatsServerInfo> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    let buf = "";
    const fail = (err: Error): void => {
      sock.destroy();
      reject(err);
    };
    sock.setTimeout(timeoutMs, () =>
      fail(new Error(`no INFO from ${host}:${port} within ${timeoutMs} ms`)),
    );
    sock.once("error", fail);
    sock.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      const eol = buf.indexOf("\r\n");
      if (eol < 0) return;
      const line = buf.slice(0, eol);
      sock.destroy();
      if (!line.startsWith("INFO ")) {
        reject(new Error(`unexpected greeting from ${host}:${port}: ${line.slice(0, 200)}`));
        return;
      }
      try {
        resolve(JSON.parse(line.slice(5)) as NatsServerInfo);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

/** Starts Debian's `nats-server` on 127.0.0.1; resolves once it greets a TCP client with INFO. */
export async function startNats(opts: StartNatsOptions = {}): Promise<NatsHandle> {
  const port = opts.port ?? (await freePort());
  const storeDir = path.resolve(opts.storeDir ?? makeTempDir("tickstream-nats-"));
  fs.mkdirSync(storeDir, { recursive: true });
  const logFile = path.join(storeDir, "nats-server.log");
  const jetstream = opts.jetstream ?? false;
  const args = ["-a", HOST, "-p", String(port), ...(jetstream ? ["-js", "-sd", storeDir] : [])];
  const detached = opts.detached ?? false;
  const url = `nats://${HOST}:${port}`;
  let proc: Launched | undefined;

  const launchServer = async (): Promise<void> => {
    fs.appendFileSync(
      logFile,
      `\n==== ${new Date().toISOString()} nats-server ${args.join(" ")} ====\n`,
    );
    const p = launch({ command: "nats-server", args, cwd: storeDir, outFile: logFile, detached });
    proc = p;
    if (p.child.pid !== undefined) opts.onSpawn?.(p.child.pid);
    const aborter = new AbortController();
    void p.exited.then((e) => {
      const hint =
        e.error || e.code === 127
          ? " (install it: scripts/infra/install-system-deps.sh nats-server)"
          : "";
      aborter.abort(
        new Error(
          `nats-server ${describeExit(e)}${hint}.\n--- ${logFile} ---\n${tailFile(logFile, 30)}`,
        ),
      );
    });
    try {
      await waitFor(
        async () => {
          const info = await readNatsInfo(port, HOST, 1000);
          // Our server, not another one on that port: it logs its ID at startup.
          if (!fs.readFileSync(logFile, "utf8").includes(info.server_id)) return false;
          return !jetstream || info.jetstream === true;
        },
        {
          timeoutMs: opts.startTimeoutMs ?? 20_000,
          intervalMs: 50,
          what: `nats-server on ${url} (log: ${logFile})`,
          signal: aborter.signal,
        },
      );
    } catch (err) {
      await terminate(p, 10_000, "SIGKILL");
      throw err;
    }
  };

  const stop = async (): Promise<void> => {
    if (proc) await terminate(proc, 10_000);
  };

  await launchServer();

  return {
    url,
    port,
    storeDir,
    logFile,
    get pid() {
      return proc?.isRunning() ? proc.child.pid : undefined;
    },
    stop,
    kill() {
      if (proc?.isRunning()) proc.child.kill("SIGKILL");
    },
    async restart() {
      await stop();
      await launchServer();
    },
  };
}
