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
 * Caches owners for one membership (this node's view); any change of the node list empties the
 * cache. Routing only: who may act on a symbol is custody's decision (src/custody/custody.ts).
 */
export class Ownership {
  private key = "";
  private nodes: string[] = [];
  private readonly cache = new Map<string, string | undefined>();

  /** Adopts the current node list; returns true when it changed. */
  update(nodes: string[]): boolean {
    const key = nodes.join("\n");
    if (key === this.key) return false;
    this.key = key;
    this.nodes = nodes;
    this.cache.clear();
    return true;
  }

  get current(): readonly string[] {
    return this.nodes;
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
