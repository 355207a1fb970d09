/**
 * What `/api/bars` answers when memory and history both hold bars of a symbol: their union by
 * interval start, sorted, the newest `limit` (as the engine answers). For a start both hold, the
 * later version wins ((generation, revision), see `newer`), memory's when they are equal: memory
 * rebuilt from a replay that began inside a bar has a lower revision than the stored whole one.
 *
 * The newest `limit` of the union are among the newest `limit` of each side, so reading `limit`
 * bars from each side is enough.
 */
import { newer } from "./store";

interface MergeableBar {
  startMs: number;
  generation: number;
  revision: number;
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
    if (s === undefined || !newer(s, m)) byStart.set(m.startMs, m);
  }
  const all = [...byStart.values()].sort((a, b) => a.startMs - b.startMs);
  return all.slice(Math.max(0, all.length - limit));
}
