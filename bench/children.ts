/**
 * The processes the Kafka sections measure, each a separate OS process: Tickstream nodes
 * (`node-probe.js`) and the counting consumer (`ceiling-consumer.js`), spawned from `dist/`, with
 * an IPC channel for their reports; plus what `/proc` says about any process (CPU time, peak RSS).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, waitFor } from "../scripts/infra/processes";

/** A spawned measuring process. */
export interface Child<R> {
  name: string;
  pid: number;
  child: ChildProcess;
  /** REST base URL (nodes only). */
  url: string | null;
  /** Asks for the process's report over IPC (`reset`: after forgetting what it saw so far). */
  report(timeoutMs?: number, type?: "report" | "reset"): Promise<R>;
  /** Peak resident set (VmHWM), MiB, while the process lives. */
  peakRssMiB(): number | null;
  /** The last lines it wrote (stdout and stderr). */
  output(): string;
  /** SIGTERM, SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/**
 * Spawns `dist/bench/<script>.js` under the project's Node, waits for its `started` message and
 * returns it. A process that exits before starting rejects with its output.
 */
export async function spawnChild<R>(
  root: string,
  name: string,
  script: string,
  args: string[],
  env: Record<string, string>,
  startTimeoutMs = 90_000,
): Promise<Child<R>> {
  const nodeBin = path.join(root, "node_modules", ".bin", "node");
  const entry = path.join(root, "dist", "bench", `${script}.js`);
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: build with tsc first`);
  const child = spawn(
    nodeBin,
    [...(process.env.BENCH_NODE_ARGS?.split(" ") ?? []), entry, ...args].filter((a) => a !== ""),
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "advanced",
    },
  );
  live.add(child);
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      live.delete(child);
      resolve();
    }),
  );
  const pending: ((m: { type: string; [k: string]: unknown }) => void)[] = [];
  let started: { url?: string | null } | null = null;
  child.on("message", (m: { type: string; [k: string]: unknown }) => {
    if (m.type === "started") started = m as { url?: string | null };
    else for (const fn of pending.splice(0)) fn(m);
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  try {
    await waitFor(
      () => {
        if (gone()) throw new Error(`${name} exited (${child.exitCode}): ${out.slice(-3000)}`);
        return started;
      },
      { timeoutMs: startTimeoutMs, intervalMs: 50, what: `${name} to start` },
    );
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  }
  const pid = child.pid!;
  return {
    name,
    pid,
    child,
    url: (started as { url?: string | null } | null)?.url ?? null,
    report(timeoutMs = 30_000, type: "report" | "reset" = "report") {
      return new Promise<R>((resolve, reject) => {
        if (gone()) {
          reject(new Error(`${name} exited (${child.exitCode}): ${out.slice(-3000)}`));
          return;
        }
        const timer = setTimeout(
          () => reject(new Error(`${name} did not report within ${timeoutMs} ms`)),
          timeoutMs,
        );
        pending.push((m) => {
          clearTimeout(timer);
          resolve(m.report as R);
        });
        child.send({ type });
      });
    },
    peakRssMiB: () => procPeakRssMiB(pid),
    output: () => out,
    async stop(graceMs = 10_000) {
      if (!gone()) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Aborted (with the child's last output) as soon as any of `children` exits. */
export function exitSignal(children: readonly Child<unknown>[]): AbortSignal {
  const aborter = new AbortController();
  for (const c of children) {
    const abort = () =>
      aborter.abort(
        new Error(`${c.name} exited (${c.child.exitCode}): ${c.output().slice(-3000)}`),
      );
    if (c.child.exitCode !== null || c.child.signalCode !== null) abort();
    else c.child.once("exit", abort);
  }
  return aborter.signal;
}

let historyDir: string | undefined;

/**
 * A history store of its own for every measured node, in a directory removed when the benchmark
 * exits: the default (`.data/history.sqlite`) would be shared between runs, and REST merges history
 * into its answers, so the bars of an earlier run would fail this run's check against the reference.
 */
function freshHistoryUrl(nodeID: string): string {
  if (historyDir === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tickstream-bench-history-"));
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    historyDir = dir;
  }
  return `sqlite:${path.join(historyDir, `${nodeID}-${Date.now().toString(36)}.sqlite`)}`;
}

/**
 * Environment of a Tickstream node consuming `topic` in `group`, REST on a free port, with the
 * default services and stores (history on, in a fresh SQLite file).
 */
export async function nodeEnv(
  nodeID: string,
  brokers: string,
  topic: string,
  group: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  return {
    NODEID: nodeID,
    PORT: String(await freePort()),
    METRICS: "false",
    LOG_LEVEL: "warn",
    DASHBOARD: "false",
    KAFKA_BROKERS: brokers,
    KAFKA_TOPICS: topic,
    KAFKA_GROUP_ID: group,
    KAFKA_DLQ_TOPIC: `${topic}.dlq`,
    HISTORY_URL: freshHistoryUrl(nodeID),
    ...extra,
  };
}

/** Peak resident set size of a live process (VmHWM from /proc), MiB; null when unreadable. */
export function procPeakRssMiB(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

let clockTicks: number | undefined;

/** User + system CPU seconds of a live process so far (/proc/<pid>/stat); null when unreadable. */
export function procCpuSec(pid: number): number | null {
  clockTicks ??= Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at ") ": utime is field 14.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}
