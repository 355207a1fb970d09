/**
 * Ports a node listens on, checked before the broker starts: a taken gateway port is a clear
 * configuration error (`PortInUse`, one line naming `PORT`), and a taken metrics port moves to the
 * next free one, so that several nodes on one machine need no hand-picked metrics ports.
 */
import { createServer } from "node:net";

/** A port the node must listen on is taken. */
export class PortInUse extends Error {
  constructor(
    readonly setting: string,
    readonly port: number,
  ) {
    super(`${setting}=${port} is already in use: set ${setting} to a free port (0 picks one)`);
    this.name = "PortInUse";
  }
}

/** Whether `port` can be listened on (all interfaces, as the gateway and the metrics server do). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** `port` if free, else the next free one among the following `tries`; throws `PortInUse` if none. */
export async function firstFreePort(setting: string, port: number, tries = 100): Promise<number> {
  if (port === 0) return 0;
  for (let p = port; p < Math.min(65536, port + tries); p++) if (await portFree(p)) return p;
  throw new PortInUse(setting, port);
}
