/**
 * Ports on one machine: a node whose gateway port is taken exits at once with one line naming the
 * setting to change; a node whose metrics port is taken serves metrics on the next free port.
 * Separate OS processes (the built node), each with its own ports.
 */
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import path from "node:path";
import { freePort } from "../../scripts/infra/processes";
import { getJson } from "../support/node";
import { spawnNode, type NodeProcess } from "../support/processes";

const ROOT = path.join(__dirname, "..", "..");

function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ port }, () => resolve(s));
  });
}

describe("ports", () => {
  const servers: Server[] = [];
  const nodes: NodeProcess[] = [];
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    for (const s of servers) s.close();
  });

  it("a taken PORT ends the node with exit code 2 and one line naming PORT", async () => {
    const port = await freePort();
    servers.push(await occupy(port));
    const child = spawn(path.join(ROOT, "node_modules", ".bin", "node"), ["dist/scripts/node.js"], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        METRICS: "false",
        HISTORY_URL: "off",
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr.trim()).toBe(
      `tickstream: PORT=${port} is already in use: set PORT to a free port (0 picks one)`,
    );
  }, 60_000);

  it("a taken METRICS_PORT moves to the next free port, logged", async () => {
    const metricsPort = await freePort();
    servers.push(await occupy(metricsPort));
    const node = await spawnNode(`ports-${process.pid}`, {
      METRICS: "true",
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: "warn",
    });
    nodes.push(node);
    await node.ready();
    const moved = /metrics are served on (\d+)/.exec(node.output());
    expect(moved).not.toBeNull();
    const port = Number(moved![1]);
    expect(port).toBeGreaterThan(metricsPort);
    const res = await getJson(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(String(res.body)).toContain("tickstream_");
  }, 60_000);
});
