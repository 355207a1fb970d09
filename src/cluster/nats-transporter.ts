/**
 * Moleculer's NATS transporter, told when its own connection drops and comes back: silence
 * caused by our own outage says nothing about the other nodes (docs/design-notes.md).
 * - disconnected: `connected = false`, so calls fail at once with Moleculer's retryable
 *   `BrokerDisconnectedError`, and `$transporter.disconnected` pauses the discoverer's heartbeat
 *   timers: no node is declared lost while we cannot hear anyone;
 * - reconnected: every known live node gets a fresh heartbeat deadline, then `onConnected(true)`
 *   sends our INFO, asks for everyone's and restarts the heartbeat timers. A node that died
 *   meanwhile is declared lost one heartbeat timeout later, as usual;
 * - until a node is heard from again (any packet), requests to it fail fast too: NATS drops a
 *   message for a node that has not resubscribed yet.
 * A packet the client refuses (larger than the server's max_payload) fails its call or event
 * like any other send error, instead of throwing out of `broker.broadcast`.
 */
import { Errors, Transporters } from "moleculer";

interface NatsStatus {
  type: string;
  data: unknown;
}
interface NatsClient {
  status(): AsyncIterable<NatsStatus>;
  close(): Promise<void>;
}
interface RegistryNode {
  id: string;
  local: boolean;
  available: boolean;
  lastHeartbeatTime: number;
}

type Packet = Parameters<InstanceType<typeof Transporters.NATS>["prepublish"]>[0];

/** Moleculer's request packet type (`PACKET_REQUEST`; its packets module is not exported). */
const PACKET_REQUEST = "REQ";

export class TickstreamNatsTransporter extends Transporters.NATS {
  private watching: unknown = null;
  /** Nodes not heard from since our connection came back. */
  private readonly unheard = new Set<string>();

  override onConnected(wasReconnect?: boolean): Promise<unknown> {
    const client = this.client as NatsClient | null;
    if (client && this.watching !== client) {
      this.watching = client;
      this.watch(client).catch((err: unknown) =>
        this.logger.warn({ err: (err as Error).message }, "NATS status watch ended"),
      );
    }
    return super.onConnected(wasReconnect);
  }

  /**
   * Moleculer flushes before it closes; while NATS is down the flush fails or waits for the
   * connection, the client is never closed and keeps reconnecting, which keeps the process alive
   * (an in-process broker stopped during an outage never lets Node exit). Without a connection
   * there is nothing to flush: close at once.
   */
  override async disconnect(): Promise<void> {
    const client = this.client as NatsClient | null;
    if (this.connected || !client) return super.disconnect();
    this.watching = null;
    this.client = null;
    await client.close();
  }

  private async watch(client: NatsClient): Promise<void> {
    for await (const s of client.status()) {
      if (this.watching !== client) return;
      if (s.type === "disconnect") this.lost();
      else if (s.type === "reconnect") this.regained();
    }
  }

  override send(topic: string, data: Buffer): Promise<void> {
    try {
      return super.send(topic, data);
    } catch (err: unknown) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  override prepublish(packet: Packet): Promise<void> {
    const target = (packet as { target?: string | null }).target;
    if (this.connected && packet.type === PACKET_REQUEST && target && this.unheard.has(target)) {
      const err = new Errors.BrokerDisconnectedError("");
      err.message = `${target} not heard from since the NATS connection came back`;
      return Promise.reject(err);
    }
    return super.prepublish(packet);
  }

  override deserialize(type: string, buf: Buffer): Packet {
    const packet = super.deserialize(type, buf);
    const sender = (packet.payload as { sender?: unknown } | undefined)?.sender;
    if (typeof sender === "string") this.unheard.delete(sender);
    return packet;
  }

  private lost(): void {
    if (!this.connected) return;
    this.connected = false;
    this.logger.warn(
      "NATS connection lost; calls fail fast and no node is declared lost meanwhile",
    );
    void this.broker.broadcastLocal("$transporter.disconnected", { graceFul: false });
  }

  private regained(): void {
    if (this.connected) return;
    const now = Math.round(process.uptime());
    for (const node of this.broker.registry.nodes.toArray() as unknown as RegistryNode[]) {
      if (node.local || !node.available) continue;
      node.lastHeartbeatTime = now;
      this.unheard.add(node.id);
    }
    this.logger.info("NATS connection back");
    this.onConnected(true).catch((err: unknown) =>
      this.logger.warn({ err: (err as Error).message }, "rediscovery after reconnect failed"),
    );
  }
}
