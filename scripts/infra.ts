/**
 * Local development infrastructure, no Docker:
 *
 *   node dist/scripts/infra.js up       start Kafka on 127.0.0.1:9092 (controller 9093, data .infra/kafka/data)
 *                                        and nats-server on 127.0.0.1:4222 (JetStream, store .infra/nats),
 *                                        detached (they outlive this command); waits until both are ready.
 *                                        Idempotent: what already runs (pid file + live pid + port) is kept.
 *   node dist/scripts/infra.js down     SIGTERM both, SIGKILL after a deadline (data is kept).
 *   node dist/scripts/infra.js status   exit code 0 if both are up and ready, 1 otherwise.
 *
 * Pid files live in .infra/run/. Wipe all local data with `down` then `rm -rf .infra/kafka/data .infra/nats`.
 * The heavy lifting (Maven fetch of the broker jars, KRaft formatting, readiness probes) is in
 * scripts/infra/ (kafka.ts, nats.ts), shared with the integration tests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { kafkaDescribeCluster, startKafka } from "./infra/kafka";
import { readNatsInfo, startNats } from "./infra/nats";
import {
  isPidAlive,
  pidCommandLine,
  probePort,
  repoRoot,
  stopPid,
  waitFor,
} from "./infra/processes";
import { quietKnownWarnings } from "../src/node/warnings";

interface Report {
  ok: boolean;
  lines: string[];
}

interface ServiceDef {
  name: "kafka" | "nats";
  port: number;
  /** Substring of /proc/<pid>/cmdline proving the pid is ours (not a recycled pid). */
  marker: string;
  stopTimeoutMs: number;
  pidFile: string;
  /** Where it is, for humans. */
  describe(): string;
  isReady(): Promise<boolean>;
  /** Starts it detached; `onSpawn` gets the pid as soon as it exists (before ready). */
  start(onSpawn: (pid: number) => void): Promise<number | undefined>;
}

type State =
  | { kind: "running"; pid: number; ready: boolean }
  | { kind: "stopped" }
  | { kind: "foreign" } // port taken by something without (a valid) pid file
  | { kind: "stale"; pid: number }; // pid file, but that pid is gone or is something else

const root = repoRoot();
const runDir = path.join(root, ".infra", "run");
const rel = (p: string): string => path.relative(process.cwd(), p) || ".";

const KAFKA_PORT = 9092;
const KAFKA_CONTROLLER_PORT = 9093;
const NATS_PORT = 4222;
const kafkaData = path.join(root, ".infra", "kafka", "data");
const natsStore = path.join(root, ".infra", "nats");

const services: ServiceDef[] = [
  {
    name: "kafka",
    port: KAFKA_PORT,
    marker: "kafka.Kafka",
    stopTimeoutMs: 30_000,
    pidFile: path.join(runDir, "kafka.pid"),
    describe: () =>
      `127.0.0.1:${KAFKA_PORT} (controller 127.0.0.1:${KAFKA_CONTROLLER_PORT}, data ${rel(kafkaData)}, ` +
      `log ${rel(path.join(kafkaData, "logs", "server.log"))})`,
    isReady: async () => {
      try {
        await kafkaDescribeCluster(`127.0.0.1:${KAFKA_PORT}`);
        return true;
      } catch {
        return false;
      }
    },
    start: async (onSpawn) => {
      const k = await startKafka({
        onSpawn,
        port: KAFKA_PORT,
        controllerPort: KAFKA_CONTROLLER_PORT,
        dataDir: kafkaData,
        numPartitions: 1,
        detached: true,
      });
      return k.pid;
    },
  },
  {
    name: "nats",
    port: NATS_PORT,
    marker: "nats-server",
    stopTimeoutMs: 10_000,
    pidFile: path.join(runDir, "nats.pid"),
    describe: () =>
      `nats://127.0.0.1:${NATS_PORT} (JetStream, store ${rel(natsStore)}, ` +
      `log ${rel(path.join(natsStore, "nats-server.log"))})`,
    isReady: async () => {
      try {
        return (await readNatsInfo(NATS_PORT)).jetstream === true;
      } catch {
        return false;
      }
    },
    start: async (onSpawn) => {
      const n = await startNats({
        onSpawn,
        port: NATS_PORT,
        jetstream: true,
        storeDir: natsStore,
        detached: true,
      });
      return n.pid;
    },
  },
];

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isOurs(svc: ServiceDef, pid: number): boolean {
  if (!isPidAlive(pid)) return false;
  const cmd = pidCommandLine(pid);
  return cmd === undefined || cmd.includes(svc.marker);
}

async function inspect(svc: ServiceDef): Promise<State> {
  const pid = readPid(svc.pidFile);
  if (pid !== undefined) {
    if (isOurs(svc, pid)) {
      const ready = (await probePort(svc.port)) && (await svc.isReady());
      return { kind: "running", pid, ready };
    }
    if (await probePort(svc.port)) return { kind: "foreign" };
    return { kind: "stale", pid };
  }
  return (await probePort(svc.port)) ? { kind: "foreign" } : { kind: "stopped" };
}

const label = (svc: ServiceDef): string => svc.name.padEnd(5);
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function up(svc: ServiceDef): Promise<Report> {
  const state = await inspect(svc);
  if (state.kind === "running") {
    if (!state.ready) {
      // Started by another `up` a moment ago: wait for it instead of starting a second one.
      try {
        await waitFor(
          async () => {
            if (!isPidAlive(state.pid)) throw new Error(`pid ${state.pid} exited`);
            return svc.isReady();
          },
          {
            timeoutMs: 120_000,
            intervalMs: 250,
            what: `${svc.name} (pid ${state.pid}) to become ready`,
          },
        );
      } catch (err) {
        return { ok: false, lines: [`${label(svc)} ${message(err)}; see its log`] };
      }
    }
    return {
      ok: true,
      lines: [`${label(svc)} already running  ${svc.describe()}  pid ${state.pid}`],
    };
  }
  if (state.kind === "foreign") {
    return {
      ok: false,
      lines: [
        `${label(svc)} port 127.0.0.1:${svc.port} is in use by a process this script did not start ` +
          `(no valid ${rel(svc.pidFile)}); stop it or free the port`,
      ],
    };
  }
  if (state.kind === "stale") fs.rmSync(svc.pidFile, { force: true });

  // Claim the start, so that two concurrent `up`s do not both spawn a server.
  fs.mkdirSync(runDir, { recursive: true });
  const lock = `${svc.pidFile}.starting`;
  if (!claim(lock)) {
    try {
      await waitFor(
        () => {
          const holder = readPid(lock);
          return !fs.existsSync(lock) || holder === undefined || !isPidAlive(holder);
        },
        {
          timeoutMs: 180_000,
          intervalMs: 250,
          what: `the other \`up\` (pid ${String(readPid(lock))}) to start ${svc.name}`,
        },
      );
    } catch (err) {
      return { ok: false, lines: [`${label(svc)} ${message(err)}`] };
    }
    fs.rmSync(lock, { force: true }); // released, or left by a process that died
    return up(svc);
  }

  const t0 = Date.now();
  try {
    const pid = await svc.start((spawned) => fs.writeFileSync(svc.pidFile, `${spawned}\n`));
    if (pid === undefined) throw new Error("exited right after becoming ready");
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    return {
      ok: true,
      lines: [`${label(svc)} started in ${secs} s  ${svc.describe()}  pid ${pid}`],
    };
  } catch (err) {
    fs.rmSync(svc.pidFile, { force: true });
    return { ok: false, lines: [`${label(svc)} failed to start: ${message(err)}`] };
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/** Atomically creates `file` holding this process's pid; false if it already exists. */
function claim(file: string): boolean {
  try {
    fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx" });
    return true;
  } catch {
    return false;
  }
}

async function down(svc: ServiceDef): Promise<Report> {
  const pid = readPid(svc.pidFile);
  if (pid === undefined || !isOurs(svc, pid)) {
    fs.rmSync(svc.pidFile, { force: true });
    const busy = await probePort(svc.port);
    const note = busy
      ? ` (but port ${svc.port} is in use by a process this script did not start)`
      : "";
    return { ok: true, lines: [`${label(svc)} not running${note}`] };
  }
  const how = await stopPid(pid, svc.stopTimeoutMs);
  fs.rmSync(svc.pidFile, { force: true });
  const what = how === "killed" ? "killed (SIGKILL after the SIGTERM deadline)" : "stopped";
  return { ok: true, lines: [`${label(svc)} ${what}  pid ${pid}`] };
}

async function status(svc: ServiceDef): Promise<Report> {
  const s = await inspect(svc);
  switch (s.kind) {
    case "running":
      return {
        ok: s.ready,
        lines: [
          `${label(svc)} ${s.ready ? "ready   " : "starting"}  ${svc.describe()}  pid ${s.pid}`,
        ],
      };
    case "foreign":
      return {
        ok: false,
        lines: [`${label(svc)} port ${svc.port} in use by a process this script did not start`],
      };
    case "stale":
      return {
        ok: false,
        lines: [`${label(svc)} stopped (stale pid file ${rel(svc.pidFile)}: pid ${s.pid})`],
      };
    case "stopped":
      return { ok: false, lines: [`${label(svc)} stopped`] };
  }
}

/** Runs `fn` on every service in parallel, prints the reports in service order; true if all are ok. */
async function forAll(fn: (svc: ServiceDef) => Promise<Report>): Promise<boolean> {
  const reports = await Promise.all(
    services.map((svc) =>
      fn(svc).catch((err: unknown) => ({ ok: false, lines: [`${label(svc)} ${message(err)}`] })),
    ),
  );
  for (const r of reports) for (const line of r.lines) (r.ok ? console.log : console.error)(line);
  return reports.every((r) => r.ok);
}

async function main(): Promise<number> {
  const cmd = process.argv[2];
  quietKnownWarnings();
  switch (cmd) {
    case "up":
      if (!(await forAll(up))) return 1;
      console.log(
        `\nexport KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT} TRANSPORTER=nats://127.0.0.1:${NATS_PORT}`,
      );
      return 0;
    case "down":
      return (await forAll(down)) ? 0 : 1;
    case "status":
      return (await forAll(status)) ? 0 : 1;
    default:
      console.error("usage: infra.js up | down | status");
      return 2;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
