/**
 * The actor processes that applied this ingest node's records since its last committed round.
 *
 * A process (node ID + instance ID, as each `apply` reply names it) that applied records and then
 * died, or dropped a state because another process superseded its lease (its custody
 * `generation` grew, src/custody/custody.ts), may have taken changes it had not written with it:
 * the log must then be read again from the last commit. A round may commit only when every
 * process noted before it started answered it with the generation it had when it applied.
 */

export interface Process {
  service: string;
  nodeID: string;
  instanceID: string;
  generation: number;
}

interface Noted extends Process {
  /** The round generation it was last noted in. */
  round: number;
}

export class Appliers {
  /** `service/nodeID/instanceID` → the process, with the custody generation it first applied under. */
  private readonly noted = new Map<string, Noted>();
  /** The latest custody generation heard from each process. */
  private readonly latest = new Map<string, number>();
  private round = 0;

  /** A process applied records; false when its generation moved since it was first noted (a loss). */
  note(p: Process): boolean {
    const k = key(p);
    this.latest.set(k, Math.max(this.latest.get(k) ?? 0, p.generation));
    const before = this.noted.get(k);
    this.noted.set(k, { ...p, generation: before?.generation ?? p.generation, round: this.round });
    return before === undefined || before.generation === p.generation;
  }

  /** A process answered a round with its current generation. */
  heard(p: Process): void {
    const k = key(p);
    this.latest.set(k, Math.max(this.latest.get(k) ?? 0, p.generation));
  }

  /** Starts a round: the processes noted so far are the ones it must hear from. */
  mark(): number {
    return ++this.round;
  }

  /** The processes noted before `mark` (what a round started at `mark` must cover). */
  before(mark: number): Process[] {
    return [...this.noted.values()].filter((p) => p.round < mark).map(processOf);
  }

  /** Whether `p` (noted) answered with the generation it applied under. */
  covered(p: Process, answered: ReadonlySet<string>): boolean {
    return answered.has(key(p)) && this.latest.get(key(p)) === p.generation;
  }

  /** After a committed round: the records of processes noted before its mark are covered. */
  settle(mark: number): void {
    for (const [k, p] of this.noted)
      if (p.round < mark) {
        this.noted.delete(k);
        this.latest.delete(k);
      }
  }

  /** Noted processes that are gone (`live` says whether one still runs) or dropped a state since. */
  lost(live: (p: Process) => boolean): Process[] {
    return [...this.noted.values()]
      .filter((p) => !live(p) || this.latest.get(key(p)) !== p.generation)
      .map(processOf);
  }

  /** Forgets processes (their loss is being handled: the log is read again from the last commit). */
  forget(processes: readonly Process[]): void {
    for (const p of processes) {
      this.noted.delete(key(p));
      this.latest.delete(key(p));
    }
  }

  get size(): number {
    return this.noted.size;
  }
}

export function key(p: Omit<Process, "generation">): string {
  return `${p.service}/${p.nodeID}/${p.instanceID}`;
}

function processOf({ service, nodeID, instanceID, generation }: Process): Process {
  return { service, nodeID, instanceID, generation };
}
