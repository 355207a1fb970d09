/**
 * A single-node KRaft Kafka broker for development, integration tests and CI: the jars come from
 * Maven Central (kafka/pom.xml, fetched once into .infra/kafka/lib) and run on the local JVM.
 * No Docker.
 *
 *   const kafka = await startKafka();            // own free ports, own temp data dir
 *   ... kafka.brokers ("127.0.0.1:PORT") ...
 *   await kafka.restart();                        // same ports, same data
 *   await kafka.stop();
 *
 * The broker dies with the calling process unless `detached` (see processes.ts).
 * Needs: java (17+) and mvn on PATH (or JAVA_HOME); see scripts/infra/install-system-deps.sh.
 * Used by Jest tests and compiled into dist/ for scripts/infra.ts, so it must not use Jest globals.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Kafka, logLevel, type Admin } from "kafkajs";
import {
  describeExit,
  errorLines,
  freePort,
  HOST,
  isPidAlive,
  launch,
  makeTempDir,
  probePort,
  repoRoot,
  run,
  tailFile,
  terminate,
  waitFor,
  type Launched,
} from "./processes";

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
    "# Written by scripts/infra/kafka.ts on every start; edits are overwritten.\n" +
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
