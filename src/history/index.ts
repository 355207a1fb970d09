/** Picks the history store the configuration names (`HISTORY_URL`). */
import { ConfigError, type HistoryConfig } from "../config";
import { PostgresHistory } from "./postgres";
import { SqliteHistory } from "./sqlite";
import { namespacedPath, type HistoryStore } from "./store";

export { BarHistory, type HistoryRange } from "./bar-history";
export { HistoryWriter } from "./writer";
export { mergeBars } from "./merge";
export { RevisionScanner } from "./revisions";
export { latestByKey, storedBar, type HistoryStore, type StoredBar } from "./store";

/**
 * Opens the configured store for `namespace` (null when history is off): SQLite keeps one file per
 * namespace, PostgreSQL one table with a namespace column. SQLite opens now and throws if it cannot.
 */
export function openHistoryStore(config: HistoryConfig, namespace: string): HistoryStore | null {
  const target = config.target;
  if (target === null) return null;
  switch (target.kind) {
    case "sqlite":
      try {
        return new SqliteHistory(namespacedPath(target.path, namespace));
      } catch (err: unknown) {
        throw new ConfigError(
          "HISTORY_URL",
          `cannot open sqlite:${target.path}: ${(err as Error).message}`,
        );
      }
    case "postgres":
      return new PostgresHistory(target.url, { timeoutMs: config.timeoutMs, namespace });
  }
}
