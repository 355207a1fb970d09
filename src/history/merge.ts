/**
 * What `/api/bars` answers when memory and history both hold bars of a symbol: their union by
 * interval start, sorted, the newest `limit` (as the engine answers). For a start both hold,
 * memory wins, since it holds the forming bar and the latest revisions, unless the stored
 * version holds more (memory rebuilt from a replay that began inside the bar).
 *
 * The newest `limit` of the union are among the newest `limit` of each side, so reading `limit`
 * bars from each side is enough.
 */

interface MergeableBar {
  startMs: number;
  trades: number;
  orders: { count: number };
}

export function mergeBars<B extends MergeableBar>(
  memory: readonly B[],
  stored: readonly B[],
  limit: number,
): B[] {
  const byStart = new Map<number, B>();
  for (const b of stored) byStart.set(b.startMs, b);
  for (const m of memory) {
    const s = byStart.get(m.startMs);
    const storedIsFuller =
      s !== undefined &&
      (s.trades > m.trades || (s.trades === m.trades && s.orders.count > m.orders.count));
    if (!storedIsFuller) byStart.set(m.startMs, m);
  }
  const all = [...byStart.values()].sort((a, b) => a.startMs - b.startMs);
  return all.slice(Math.max(0, all.length - limit));
}
