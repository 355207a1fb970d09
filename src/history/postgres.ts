/**
 * History in PostgreSQL (npm `pg`): one table shared by every node of a cluster, so whichever node
 * owns a symbol serves all of its history; rows belong to a namespace (part of the key, in every
 * query), so clusters sharing a database never see each other's bars.
 *
 * Prices and quantities are NUMERIC (exact decimals). A batch is one transaction of multi-row
 * `INSERT … ON CONFLICT … DO UPDATE … WHERE` statements. The server being down or slow is an
 * ordinary, expected failure: the pool connects lazily, every query has a deadline, the table is
 * created on first use (retried until it works), and an idle connection dropped by a restarting
 * server is discarded instead of crashing the process.
 */
import { Pool, type PoolClient } from "pg";
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

export const TABLE = "tickstream_bars";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${TABLE} (
  namespace   text        NOT NULL DEFAULT '',
  symbol      text        NOT NULL,
  "interval"  text        NOT NULL,
  start_ms    bigint      NOT NULL,
  open        numeric,
  high        numeric,
  low         numeric,
  close       numeric,
  volume      numeric     NOT NULL,
  volume_exact numeric,
  notional    numeric,
  vwap        numeric,
  trades      bigint      NOT NULL,
  revised     boolean     NOT NULL,
  order_count bigint      NOT NULL,
  buy_qty     numeric     NOT NULL,
  sell_qty    numeric     NOT NULL,
  generation  bigint      NOT NULL DEFAULT 0,
  revision    bigint      NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, symbol, "interval", start_ms)
)`;

/**
 * Tables created before namespaces and bar versions: their rows join the namespace '' at version
 * (0, 0), and the key gains the namespace. Idempotent.
 */
const MIGRATE = [
  `ALTER TABLE ${TABLE} ADD COLUMN IF NOT EXISTS namespace text NOT NULL DEFAULT ''`,
  `ALTER TABLE ${TABLE} ADD COLUMN IF NOT EXISTS generation bigint NOT NULL DEFAULT 0`,
  `ALTER TABLE ${TABLE} ADD COLUMN IF NOT EXISTS revision bigint NOT NULL DEFAULT 0`,
  // Before exact roll-ups: such rows read null (see StoredBar).
  `ALTER TABLE ${TABLE} ADD COLUMN IF NOT EXISTS volume_exact numeric`,
  `ALTER TABLE ${TABLE} ADD COLUMN IF NOT EXISTS notional numeric`,
];
const KEY_HAS_NAMESPACE = `
SELECT 1 FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = '${TABLE}'::regclass AND i.indisprimary AND a.attname = 'namespace'`;
const REKEY = `ALTER TABLE ${TABLE} DROP CONSTRAINT ${TABLE}_pkey,
  ADD PRIMARY KEY (namespace, symbol, "interval", start_ms)`;

const COLUMNS = ["namespace", ...BAR_COLUMNS];

/** Rows per INSERT: 19 parameters each, below PostgreSQL's 65,535 per statement. */
const ROWS_PER_STATEMENT = 1000;

const UPDATE = COLUMNS.slice(4)
  .map((c) => `${c} = EXCLUDED.${c}`)
  .join(", ");

// Row values compare lexicographically: the higher (generation, revision) wins (see HistoryStore).
const CONFLICT = `ON CONFLICT (namespace, symbol, "interval", start_ms) DO UPDATE SET ${UPDATE}, updated_at = now()
WHERE (EXCLUDED.generation, EXCLUDED.revision) > (${TABLE}.generation, ${TABLE}.revision)`;

const SELECT = `
SELECT ${COLUMNS.join(", ")} FROM ${TABLE}
WHERE namespace = $1 AND symbol = $2 AND "interval" = $3 AND start_ms >= $4 AND start_ms < $5
ORDER BY start_ms DESC
LIMIT $6`;

/** A connection URL with its password hidden. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "postgres://…";
  }
}

export class PostgresHistory implements HistoryStore {
  readonly name: string;
  private readonly pool: Pool;
  private schema: Promise<void> | null = null;
  private readonly namespace: string;

  constructor(url: string, options: { timeoutMs: number; poolSize?: number; namespace?: string }) {
    this.namespace = options.namespace ?? "";
    this.name = `${redactUrl(url)} (namespace "${this.namespace}")`;
    this.pool = new Pool({
      connectionString: url,
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: options.timeoutMs,
      query_timeout: options.timeoutMs,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      application_name: "tickstream",
    });
    // An idle client loses its connection when the server stops; the pool drops it. Without a
    // listener, the 'error' event would crash the process.
    this.pool.on("error", () => undefined);
  }

  async writeBars(bars: readonly StoredBar[]): Promise<void> {
    if (bars.length === 0) return;
    await this.ensureSchema();
    const rows = latestByKey(bars);
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT)
        await insert(client, this.namespace, rows.slice(i, i + ROWS_PER_STATEMENT));
      await client.query("COMMIT");
    } catch (err: unknown) {
      broken = err instanceof Error ? err : new Error(String(err));
      await client.query("ROLLBACK").catch(() => undefined);
      throw broken;
    } finally {
      // A client that failed mid-transaction may be unusable: let the pool replace it.
      client.release(broken);
    }
  }

  async readBars(
    symbol: string,
    interval: LiveInterval,
    fromMs: number | undefined,
    toMs: number | undefined,
    limit: number,
  ): Promise<StoredBar[]> {
    await this.ensureSchema();
    const { from, to } = rangeBounds(fromMs, toMs);
    const { rows } = await this.pool.query<BarRow>(SELECT, [
      this.namespace,
      symbol,
      interval,
      from,
      to,
      limit,
    ]);
    return rows.reverse().map(fromRow);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Creates the table once; a failure (server down) is retried by the next call. */
  private ensureSchema(): Promise<void> {
    this.schema ??= (async () => {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        // Nodes starting together would race on CREATE TABLE IF NOT EXISTS (a unique violation
        // in the catalog); a transaction-scoped advisory lock serialises them.
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [TABLE]);
        await client.query(SCHEMA);
        for (const m of MIGRATE) await client.query(m);
        if ((await client.query(KEY_HAS_NAMESPACE)).rowCount === 0) await client.query(REKEY);
        await client.query("COMMIT");
      } catch (err: unknown) {
        broken = err instanceof Error ? err : new Error(String(err));
        await client.query("ROLLBACK").catch(() => undefined);
        throw broken;
      } finally {
        client.release(broken);
      }
    })().catch((err: unknown) => {
      this.schema = null;
      throw err;
    });
    return this.schema;
  }
}

async function insert(
  client: PoolClient,
  namespace: string,
  rows: readonly StoredBar[],
): Promise<void> {
  const values: unknown[] = [];
  const tuples = rows.map((b, i) => {
    values.push(namespace, ...barValues(b));
    const base = i * COLUMNS.length;
    return `(${COLUMNS.map((_, j) => `$${base + j + 1}`).join(", ")})`;
  });
  await client.query(
    `INSERT INTO ${TABLE} (${COLUMNS.join(", ")}) VALUES ${tuples.join(", ")} ${CONFLICT}`,
    values,
  );
}
