/**
 * The actor processes that applied this ingest node's records since its last checkpoint commit.
 *
 * A process that applied records and then died took the changes it had not checkpointed with it;
 * the log must then be read again from the last commit. Knowing *which processes* (node ID and
 * instance ID, as each `apply` reply names them) applied records makes that decision exact and
 * independent of Moleculer's node events: a round may commit only when every process noted before
 * it started answered it, and any noted process that is gone — its node unknown or unavailable,
 * or back under the same ID as another instance — is a loss. Node events alone miss losses: a
 * service does not receive the events fired while it is starting, so an ingest node that met an
 * actor node during its own start never knew that node's first instance and could not tell when
 * it restarted (the chaos test lost the trades applied to it).
 */

export interface Process {
  service: string;
  nodeID: string;
  instanceID: string;
}

export class Appliers {
  /** `service/nodeID/instanceID` → the process and the generation it last applied in. */
  private readonly noted = new Map<string, Process & { generation: number }>();
  private generation = 0;

  /** A process applied records, or already held them (its `apply` reply said so). */
  note(p: Process): void {
    this.noted.set(key(p), { ...p, generation: this.generation });
  }

  /** Starts a round: the processes noted so far are the ones the round must hear from. */
  mark(): number {
    return ++this.generation;
  }

  /** The processes noted before `mark` (what a round started at `mark` must cover). */
  before(mark: number): Process[] {
    return [...this.noted.values()].filter((p) => p.generation < mark).map(processOf);
  }

  /** After a committed round: the records of processes noted before its mark are covered. */
  settle(mark: number): void {
    for (const [key, p] of this.noted) if (p.generation < mark) this.noted.delete(key);
  }

  /** Noted processes that are gone: `live(p)` says whether a process still runs. */
  lost(live: (p: Process) => boolean): Process[] {
    return [...this.noted.values()].filter((p) => !live(p)).map(processOf);
  }

  /** Forgets processes (their loss is being handled: the log is read again from the last commit). */
  forget(processes: readonly Process[]): void {
    for (const p of processes) this.noted.delete(key(p));
  }

  /** Forgets every process of a node (it left gracefully, handing over what it held). */
  forgetNode(nodeID: string): void {
    for (const [k, p] of this.noted) if (p.nodeID === nodeID) this.noted.delete(k);
  }

  get size(): number {
    return this.noted.size;
  }
}

function key(p: Process): string {
  return `${p.service}/${p.nodeID}/${p.instanceID}`;
}

function processOf({ service, nodeID, instanceID }: Process): Process {
  return { service, nodeID, instanceID };
}
