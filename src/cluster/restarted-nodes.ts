/**
 * Requests in flight to a node that restarted under the same ID fail at once, as they do when a
 * node disconnects.
 *
 * A process killed and restarted under its node ID before its heartbeats time out is never
 * reported disconnected: Moleculer only sees an INFO packet with a new instance ID and updates the
 * node. Requests sent to the old process are lost with it, and without this each one waits for
 * the whole request timeout (docs/design-notes.md). Moleculer rejects the pending requests of a
 * disconnected node with `RequestRejectedError`, which is retryable; this does the same when the
 * instance changes, so the retry reaches the new process.
 */
import type { Middleware, ServiceBroker } from "moleculer";

/** Moleculer's INFO packet type (`PACKET_INFO`; its packets module is not exported). */
const PACKET_INFO = "INFO";

interface InfoPacket {
  payload?: { sender?: string; instanceID?: string };
}

interface KnownNode {
  local: boolean;
  available: boolean;
  instanceID: string | null;
}

export function restartedNodesMiddleware(): Middleware {
  let broker: ServiceBroker | null = null;
  return {
    name: "RestartedNodes",
    created(b: ServiceBroker) {
      broker = b;
    },
    transitMessageHandler(next: (cmd: string, packet: InfoPacket) => Promise<boolean>) {
      return (cmd: string, packet: InfoPacket) => {
        const restarted = cmd === PACKET_INFO ? restartedSender(broker, packet) : null;
        const handled = next(cmd, packet);
        if (restarted && broker?.transit) {
          broker.logger.warn(
            { nodeID: restarted },
            "node restarted under the same ID; its pending requests are rejected (retryable)",
          );
          broker.transit.removePendingRequestByNodeID(restarted);
        }
        return handled;
      };
    },
  } as unknown as Middleware; // the typings have transitMessageHandler return a Promise, not a handler
}

function restartedSender(broker: ServiceBroker | null, packet: InfoPacket): string | null {
  const sender = packet.payload?.sender;
  const instanceID = packet.payload?.instanceID;
  if (!broker || !sender || !instanceID) return null;
  const node = broker.registry.nodes.get(sender) as unknown as KnownNode | undefined;
  if (!node || node.local || !node.available || !node.instanceID) return null;
  return node.instanceID !== instanceID ? sender : null;
}
