/**
 * Tickstream nodes as separate OS processes (the built `dist/scripts/node.js`), for tests that kill
 * them: SIGKILL means SIGKILL, not a simulated failure inside one process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { freePort } from "../../scripts/infra/processes";
import { eventually, getJson } from "./node";

const ROOT = path.join(__dirname, "..", "..");
const NODE = path.join(ROOT, "node_modules", ".bin", "node");
const ENTRY = path.join(ROOT, "dist", "scripts", "node.js");

export interface NodeProcess {
  nodeID: string;
  url: string;
  child: ChildProcess;
  output(): string;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), and wait until it exits. */
  stop(): Promise<void>;
  /** Resolves when /api/ready answers 200 (REST must be among the services). */
  ready(timeoutMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export async function spawnNode(nodeID: string, env: Record<string, string>): Promise<NodeProcess> {
  const port = await freePort();
  const child = spawn(NODE, [ENTRY], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODEID: nodeID,
      PORT: String(port),
      METRICS: "false",
      LOG_LEVEL: "warn",
      HISTORY_URL: "off",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-2_000_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => (live.delete(child), resolve())),
  );
  const url = `http://127.0.0.1:${port}`;
  return {
    nodeID,
    url,
    child,
    output: () => out,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
    async ready(timeoutMs = 60_000) {
      await eventually(
        async () => {
          if (child.exitCode !== null)
            throw new Error(`node ${nodeID} exited (${child.exitCode}): ${out.slice(-2000)}`);
          return (await getJson(`${url}/api/ready`)).status === 200 ? true : undefined;
        },
        `${nodeID} to be ready`,
        timeoutMs,
      );
    },
  };
}
