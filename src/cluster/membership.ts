/**
 * Who owns what: the live nodes hosting a service, and each symbol's owner among them by
 * rendezvous hashing. Membership comes from Moleculer's own registry (NATS discovery and
 * heartbeats): no other registry exists.
 */
import type { ServiceBroker } from "moleculer";
import { ownerOf } from "./rendezvous";

interface ServiceItem {
  name: string;
  nodeID: string;
  available: boolean;
}

/** Sorted ids of the available nodes that host `service` (the local node included unless told). */
export function members(broker: ServiceBroker, service: string, exclude?: string): string[] {
  const list = broker.registry.getServiceList({
    onlyAvailable: true,
    skipInternal: true,
  }) as unknown as ServiceItem[];
  const ids = new Set(
    list.filter((s) => s.name === service && s.nodeID !== exclude).map((s) => s.nodeID),
  );
  return [...ids].sort();
}

/**
 * Caches owners for one membership; a new membership (any change of the node list) starts a new
 * epoch and an empty cache.
 */
export class Ownership {
  private key = "";
  private nodes: string[] = [];
  private readonly cache = new Map<string, string | undefined>();
  /** Nodes that left the list, with when (epoch ms); forgotten when they come back. */
  private readonly left = new Map<string, number>();
  epoch = 0;

  /** Adopts the current node list; returns true when it changed. */
  update(nodes: string[], nowMs = Date.now()): boolean {
    const key = nodes.join("\n");
    if (key === this.key) return false;
    for (const n of this.nodes) if (!nodes.includes(n)) this.left.set(n, nowMs);
    for (const n of nodes) this.left.delete(n);
    this.key = key;
    this.nodes = nodes;
    this.cache.clear();
    this.epoch += 1;
    return true;
  }

  get current(): readonly string[] {
    return this.nodes;
  }

  /** Nodes that left the list less than `withinMs` ago. */
  leftWithin(withinMs: number, nowMs = Date.now()): string[] {
    const out: string[] = [];
    for (const [n, at] of this.left) {
      if (nowMs - at < withinMs) out.push(n);
      else this.left.delete(n);
    }
    return out;
  }

  owner(symbol: string): string | undefined {
    let o = this.cache.get(symbol);
    if (o === undefined && !this.cache.has(symbol)) {
      o = ownerOf(symbol, this.nodes);
      this.cache.set(symbol, o);
    }
    return o;
  }
}
