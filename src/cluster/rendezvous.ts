/**
 * Rendezvous (highest-random-weight) hashing: a symbol is owned by the node with the highest
 * weight(node, symbol). When a node joins, only the symbols it now wins move to it (≈ 1/N);
 * when a node leaves, only its symbols move. Moleculer's Shard strategy, a ring of equal slices of
 * the sorted node list, moves about half of all keys when one node joins (NOTES.md, moleculer#722).
 */
import { Strategies, type Context, type Endpoint } from "moleculer";

/** cyrb53: a fast, well-mixed 53-bit string hash (public domain, bryc). */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The weight of a node for a key. */
export function weight(nodeID: string, key: string): number {
  return hash53(`${nodeID}\u0000${key}`);
}

/** The owner of `key` among `nodeIDs` (ties, practically impossible, go to the smaller id). */
export function ownerOf(key: string, nodeIDs: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const id of nodeIDs) {
    const w = weight(id, key);
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}

/** The context's shard key: `meta.shard` when given, else `params.symbol`. */
export function shardKey(ctx: Context | undefined): string | undefined {
  const shard: unknown = (ctx?.meta as Record<string, unknown> | undefined)?.shard;
  if (typeof shard === "string") return shard;
  const params = ctx?.params as { symbol?: unknown } | undefined;
  return typeof params?.symbol === "string" ? params.symbol : undefined;
}

/**
 * Moleculer strategy: among the endpoints the balancer offers (available ones: an endpoint whose
 * circuit is open is not offered), pick the key's highest-weight node. A call that reaches a
 * node that is not the owner under its own view is refused as retryable (see the actors mixin),
 * so a fallback never applies a symbol's trades in two places.
 */
export class RendezvousStrategy extends Strategies.Base {
  select(list: Endpoint[], ctx?: Context): Endpoint {
    const key = shardKey(ctx);
    if (key !== undefined) {
      const owner = ownerOf(
        key,
        list.map((e) => e.id),
      );
      const found = list.find((e) => e.id === owner);
      if (found) return found;
    }
    return list[Math.floor(Math.random() * list.length)]!;
  }
}

let registered = false;

/** Registers the strategy under the name "Rendezvous" (once per process). */
export function registerRendezvous(): void {
  if (registered) return;
  Strategies.register("Rendezvous", RendezvousStrategy as never);
  registered = true;
}
