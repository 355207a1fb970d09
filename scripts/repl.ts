/**
 * `npm run repl`: starts a node (same configuration as `npm start`) with the Moleculer REPL and
 * Tickstream's commands: symbols, bars <symbol> [interval] [--limit n], anomalies [symbol], stats.
 */
import { loadConfig } from "../src/config";
import { startNode } from "../app/start";
import { REPL_COMMANDS } from "../src/repl/commands";

async function main(): Promise<void> {
  const node = await startNode(loadConfig(), {
    replOptions: { customCommands: REPL_COMMANDS },
  });
  node.broker.repl();
}

main().catch((err: unknown) => {
  process.stderr.write(`tickstream: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
