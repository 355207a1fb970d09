/**
 * `npm run cluster [-- --nodes 3] [--rate 2000] [--symbols 50]`: a whole cluster on this machine,
 * no Docker. Starts the local Kafka and nats-server (as `npm run infra:up`, unless they already
 * run), the synthetic feed into the `trades` topic, and N nodes running every service over NATS
 * (node 1's gateway on PORT, default 3000; the others on free ports). Prints the dashboard URL
 * and how to add a node; Ctrl-C stops the nodes and the feed, and the infrastructure if this
 * command started it. Each node's log is in .infra/cluster/<node>.log.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { repoRoot } from "../src/infra/local";

const ROOT = repoRoot();
const NODE = process.execPath;
const KAFKA = "127.0.0.1:9092";
const NATS = "nats://127.0.0.1:4222";
const NAMESPACE = "local";
const LOGS = path.join(ROOT, ".infra", "cluster");

function script(name: string): string {
  return path.join(ROOT, "dist", "scripts", `${name}.js`);
}

function infra(cmd: "up" | "down" | "status", quiet = false): boolean {
  const res = spawnSync(NODE, [script("infra"), cmd], { stdio: quiet ? "ignore" : "inherit" });
  return res.status === 0;
}

/** Resolves with the child's first output line matching `re`, or rejects when it exits first. */
function waitForLine(child: ChildProcess, re: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (d: Buffer) => {
      seen = (seen + d.toString()).slice(-100_000);
      const m = re.exec(seen);
      if (m) {
        child.stdout?.off("data", onData);
        resolve(m);
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}) before it was ready`)));
  });
}

async function main(): Promise<number> {
  const args = parseArgs({
    options: {
      nodes: { type: "string", default: "3" },
      rate: { type: "string", default: "2000" },
      symbols: { type: "string", default: "50" },
    },
  }).values;
  const n = Number(args.nodes);
  if (!Number.isInteger(n) || n < 1 || n > 16) {
    console.error("cluster: --nodes must be an integer from 1 to 16");
    return 2;
  }
  const gatewayPort = process.env.PORT ?? "3000";
  const ownInfra = !infra("status", true);
  if (ownInfra && !infra("up")) return 1;

  const children: ChildProcess[] = [];
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping the nodes and the feed…");
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once("exit", () => resolve());
            c.kill("SIGTERM");
            setTimeout(() => c.kill("SIGKILL"), 20_000).unref();
          }),
      ),
    );
    if (ownInfra) infra("down");
  };
  process.once("SIGINT", () => void stop().then(() => process.exit(0)));
  process.once("SIGTERM", () => void stop().then(() => process.exit(0)));

  try {
    mkdirSync(LOGS, { recursive: true });
    const feed = spawn(
      NODE,
      [
        script("feed"),
        "--brokers",
        KAFKA,
        "--synthetic",
        "--rate",
        args.rate,
        "--symbols",
        args.symbols,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    children.push(feed);

    const urls: string[] = [];
    // One after another: each node checks its ports free before it listens (src/node/ports.ts).
    for (let i = 1; i <= n; i++) {
      const nodeID = `node-${i}`;
      const child = spawn(NODE, [script("node")], {
        env: {
          ...process.env,
          NODEID: nodeID,
          NAMESPACE,
          TRANSPORTER: NATS,
          KAFKA_BROKERS: KAFKA,
          PORT: i === 1 ? gatewayPort : "0",
          HISTORY_URL: `sqlite:.data/cluster-${nodeID}.sqlite`,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      const log = createWriteStream(path.join(LOGS, `${nodeID}.log`));
      child.stdout.pipe(log);
      child.stderr.pipe(log);
      const [, url] = await waitForLine(
        child,
        /Tickstream REST on (http:\/\/[^\s"]+)\/api/,
        nodeID,
      );
      urls.push(url!);
      console.log(
        `${nodeID}: ${url}/api (log: ${path.relative(process.cwd(), path.join(LOGS, `${nodeID}.log`))})`,
      );
    }
    console.log(
      `\ndashboard: ${urls[0]}/\n` +
        `add a node:  TRANSPORTER=${NATS} NAMESPACE=${NAMESPACE} KAFKA_BROKERS=${KAFKA} PORT=0 npm run node\n` +
        "Ctrl-C stops everything this command started.",
    );
  } catch (err: unknown) {
    console.error(`cluster: ${(err as Error).message}`);
    await stop();
    return 1;
  }
  await new Promise(() => undefined); // until a signal
  return 0;
}

main().then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (err: unknown) => {
    console.error(`cluster: ${(err as Error).message}`);
    process.exit(1);
  },
);
