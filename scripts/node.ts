/**
 * `npm start` / `npm run node -- --services ingest,parser,aggregator,anomaly,api`
 *
 * Starts one node. Without TRANSPORTER it is a complete system in one process (in-process
 * transport, built-in synthetic feed or FEED_FILE replay); with TRANSPORTER (NATS) it joins the
 * cluster of its NAMESPACE.
 */
import { ConfigError, loadConfig, parseServiceList } from "../src/config";
import { PortInUse } from "../src/node/ports";
import { startNode } from "../app/start";
import { quietKnownWarnings } from "../src/node/warnings";

function servicesArg(argv: string[]): string | undefined {
  const i = argv.findIndex((a) => a === "--services" || a.startsWith("--services="));
  if (i < 0) return undefined;
  const arg = argv[i] ?? "";
  return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : argv[i + 1];
}

async function main(): Promise<void> {
  quietKnownWarnings();
  let config;
  try {
    config = loadConfig();
    const services = servicesArg(process.argv.slice(2));
    if (services !== undefined) config.services = parseServiceList(services);
  } catch (err: unknown) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tickstream: bad configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const starveMs = config.starveOnSigusr2Ms;
  if (starveMs > 0)
    process.on("SIGUSR2", () => {
      const until = Date.now() + starveMs;
      while (Date.now() < until); // a starved process: nothing else runs meanwhile
    });
  // The broker stops itself gracefully on SIGINT/SIGTERM (its own process handlers).
  try {
    await startNode(config);
  } catch (err: unknown) {
    if (err instanceof PortInUse) {
      process.stderr.write(`tickstream: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`tickstream: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
