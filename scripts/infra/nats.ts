/**
 * A NATS server (Debian's `nats-server`) for development, integration tests and CI, optionally with
 * JetStream. No Docker.
 *
 *   const nats = await startNats({ jetstream: true }); // own free port, own temp store dir
 *   ... nats.url ("nats://127.0.0.1:PORT") ...
 *   await nats.restart();                              // same port, same store
 *   await nats.stop();
 *
 * The server dies with the calling process unless `detached` (see processes.ts).
 * Needs: `nats-server` on PATH; see scripts/infra/install-system-deps.sh.
 * Used by Jest tests and compiled into dist/ for scripts/infra.ts, so it must not use Jest globals.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import {
  describeExit,
  freePort,
  HOST,
  launch,
  makeTempDir,
  tailFile,
  terminate,
  waitFor,
  type Launched,
} from "./processes";

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
