/**
 * History in an embedded SQLite file (Node's built-in `node:sqlite`): the default, for one node.
 * One file per namespace (`openHistoryStore` names it), so the file holds one cluster's bars.
 *
 * WAL journal (readers never wait for the writer), one transaction per batch, a STRICT table whose
 * price and quantity columns are TEXT so no value is ever coerced to a float. Calls are
 * synchronous; a batch of a few hundred bars takes about a millisecond.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { LiveInterval } from "../contracts/bars";
import {
  BAR_COLUMNS,
  barValues,
  fromRow,
  latestByKey,
  rangeBounds,
  type BarRow,
  type HistoryStore,
  type StoredBar,
} from "./store";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS bars (
  symbol      TEXT    NOT NULL,
  "interval"  TEXT    NOT NULL,
  start_ms    INTEGER NOT NULL,
  open        TEXT,
  high        TEXT,
  low         TEXT,
  close       TEXT,
  volume      TEXT    NOT NULL,
  volume_exact TEXT,
  notional    TEXT,
  vwap        TEXT,
  trades      INTEGER NOT NULL,
  revised     INTEGER NOT NULL,
  order_count INTEGER NOT NULL,
  buy_qty     TEXT    NOT NULL,
  sell_qty    TEXT    NOT NULL,
  updated_ms  INTEGER NOT NULL,
  generation  INTEGER NOT NULL DEFAULT 0,
  revision    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (symbol, "interval", start_ms)
) STRICT, WITHOUT ROWID`;

/** Files written before bar versions lack the two columns: their rows are version (0, 0). */
const VERSION_COLUMNS = ["generation", "revision"];
/** Files written before exact roll-ups lack these: their rows read null (see StoredBar). */
const EXACT_COLUMNS = ["volume_exact", "notional"];

const COLUMNS = BAR_COLUMNS.join(", ");

// Row values compare lexicographically: the higher (generation, revision) wins (see HistoryStore).
const UPSERT = `
INSERT INTO bars (${COLUMNS}, updated_ms)
VALUES (${BAR_COLUMNS.map(() => "?").join(", ")}, ?)
ON CONFLICT (symbol, "interval", start_ms) DO UPDATE SET
  open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
  volume = excluded.volume, volume_exact = excluded.volume_exact, notional = excluded.notional,
  vwap = excluded.vwap, trades = excluded.trades,
  revised = excluded.revised, order_count = excluded.order_count, buy_qty = excluded.buy_qty,
  sell_qty = excluded.sell_qty, generation = excluded.generation, revision = excluded.revision,
  updated_ms = excluded.updated_ms
WHERE (excluded.generation, excluded.revision) > (bars.generation, bars.revision)`;

const SELECT = `
SELECT ${COLUMNS} FROM bars
WHERE symbol = ? AND "interval" = ? AND start_ms >= ? AND start_ms < ?
ORDER BY start_ms DESC
LIMIT ?`;

export class SqliteHistory implements HistoryStore {
  readonly name: string;
  private readonly db: DatabaseSync;
  private readonly upsert: StatementSync;
  private readonly select: StatementSync;

  /** Opens (creating it and its directory if needed) the file; throws when it cannot. */
  constructor(file: string) {
    const resolved = file === ":memory:" ? file : path.resolve(file);
    this.name = `sqlite:${resolved}`;
    if (resolved !== ":memory:") mkdirSync(path.dirname(resolved), { recursive: true });
    this.db = new DatabaseSync(resolved);
    this.db.exec("PRAGMA journal_mode = WAL");
    // WAL with NORMAL is durable across process crashes; only an OS crash may lose the last commits.
    this.db.exec("PRAGMA synchronous = NORMAL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    this.db.exec(SCHEMA);
    const present = new Set(
      (this.db.prepare("PRAGMA table_info(bars)").all() as { name: string }[]).map((c) => c.name),
    );
    for (const c of VERSION_COLUMNS.filter((c) => !present.has(c)))
      this.db.exec(`ALTER TABLE bars ADD COLUMN ${c} INTEGER NOT NULL DEFAULT 0`);
    for (const c of EXACT_COLUMNS.filter((c) => !present.has(c)))
      this.db.exec(`ALTER TABLE bars ADD COLUMN ${c} TEXT`);
    this.upsert = this.db.prepare(UPSERT);
    this.select = this.db.prepare(SELECT);
  }

  writeBars(bars: readonly StoredBar[]): Promise<void> {
    if (bars.length === 0) return Promise.resolve();
    const now = Date.now();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      for (const b of latestByKey(bars))
        this.upsert.run(...barValues(b).map((v) => (typeof v === "boolean" ? Number(v) : v)), now);
      this.db.exec("COMMIT");
    } catch (err: unknown) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return Promise.resolve();
  }

  readBars(
    symbol: string,
    interval: LiveInterval,
    fromMs: number | undefined,
    toMs: number | undefined,
    limit: number,
  ): Promise<StoredBar[]> {
    const { from, to } = rangeBounds(fromMs, toMs);
    try {
      const rows = this.select.all(symbol, interval, from, to, limit) as unknown as BarRow[];
      return Promise.resolve(rows.reverse().map(fromRow));
    } catch (err: unknown) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
    return Promise.resolve();
  }
}
