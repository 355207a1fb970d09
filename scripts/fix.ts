/**
 * `npm run fix -- check FILE`
 *
 * Validates a FIX file (a raw SOH stream, or one message per line with SOH or `|`) with the same
 * Rust decoder the pipeline uses, printing one JSON line per message and a summary on stderr.
 * Exits 0 even when messages are bad (that is the report), 2 when the arguments are unusable.
 */
import { ConfigError, loadConfig } from "../src/config";
import { readFixFile, type FixLine } from "../src/fix/file";
import { native } from "../src/native";

const USAGE = "usage: npm run fix -- check FILE\n";

function fail(message: string): never {
  process.stderr.write(`fix: ${message}\n${USAGE}`);
  process.exit(2);
}

function main(argv: string[]): void {
  const [command, file, ...rest] = argv;
  if (command !== "check" || file === undefined || rest.length > 0) fail("expected: check FILE");
  let mdEntryTypes: string;
  try {
    mdEntryTypes = loadConfig().decoder.mdEntryTypes;
  } catch (err: unknown) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  let lines: FixLine[];
  try {
    lines = readFixFile(file);
  } catch (err: unknown) {
    fail(`cannot read ${file}: ${(err as Error).message}`);
  }

  const decoder = new native.FixDecoder({ mdEntryTypes });
  const summary = {
    messages: 0,
    ok: 0,
    rejected: {} as Record<string, number>,
    trades: 0,
    byType: {} as Record<string, number>,
  };
  const out: string[] = [];
  let index = 0;
  for (const { bytes } of lines) {
    for (const m of decoder.decodeMessages(bytes, index)) {
      const line: Record<string, unknown> = { index, ok: m.ok };
      if (m.reason !== undefined && m.reason !== null) {
        line.reason = m.reason;
        summary.rejected[m.reason] = (summary.rejected[m.reason] ?? 0) + 1;
      } else summary.ok += 1;
      if (m.msgType !== undefined && m.msgType !== null) {
        line.msgType = m.msgType;
        summary.byType[m.msgType] = (summary.byType[m.msgType] ?? 0) + 1;
      }
      if (m.trades.length > 0) {
        line.trades = m.trades.map((t) => ({
          symbol: t.symbol,
          price: t.price,
          qty: t.qty,
          time: t.time,
          timeNs: t.timeNs,
          id: t.id ?? null,
        }));
        summary.trades += m.trades.length;
      }
      if (m.order) line.order = m.order;
      if (m.correction) line.correction = m.correction;
      out.push(JSON.stringify(line));
      summary.messages += 1;
      index += 1;
      if (out.length >= 4096) process.stdout.write(out.splice(0).join("\n") + "\n");
    }
  }
  if (out.length > 0) process.stdout.write(out.join("\n") + "\n");
  process.stderr.write(`${JSON.stringify({ file, ...summary })}\n`);
}

main(process.argv.slice(2));
