/**
 * `npm run cluster [-- --nodes 3] [--rate 2000] [--symbols 50]`: a whole cluster on this machine,
 * no Docker. Starts the local Kafka and nats-server (as `npm run infra:up`, unless they already
 * run), the synthetic feed into the `trades` topic, and N nodes running every service over NATS
 * (node 1's gateway on PORT, default 3000; the others on free ports). Prints the dashboard URL
 * and how to add a node; Ctrl-C stops the nodes and the feed, and the infrastructure if this
 * command started it. Each node's log is in .infra/cluster/<node>.log, the feed's in feed.log.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort, repoRoot } from "./infra/processes";

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

/** Resolves once `url` answers /api/health; rejects when the child exits first. */
async function healthy(child: ChildProcess, url: string, what: string): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    const ok = await fetch(`${url}/api/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
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
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(feed);
    const feedLog = createWriteStream(path.join(LOGS, "feed.log"));
    feed.stdout.pipe(feedLog);
    feed.stderr.pipe(feedLog);

    const urls: string[] = [];
    // One after another: each node checks its ports free before it listens (src/node/ports.ts).
    for (let i = 1; i <= n; i++) {
      const nodeID = `node-${i}`;
      const port = i === 1 ? Number(gatewayPort) : await freePort();
      const child = spawn(NODE, [script("node")], {
        env: {
          ...process.env,
          NODEID: nodeID,
          NAMESPACE,
          TRANSPORTER: NATS,
          KAFKA_BROKERS: KAFKA,
          PORT: String(port),
          HISTORY_URL: `sqlite:.data/cluster-${nodeID}.sqlite`,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      const log = createWriteStream(path.join(LOGS, `${nodeID}.log`));
      child.stdout.pipe(log);
      child.stderr.pipe(log);
      const url = `http://127.0.0.1:${port}`;
      await healthy(child, url, nodeID);
      urls.push(url);
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
