/**
 * Steps of the order saga parked for an admin. A money movement or compensation at the
 * provider or the courier that is refused for good (or outlasts its retry window) is parked
 * here instead of aborting the saga: a row in the read model, an audit entry, a metric and an
 * error log; the order shows NEEDS_ATTENTION until an admin retries or resolves each item.
 * Deterministic code only.
 */
import {
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  metricMeter,
  workflowInfo,
} from '@temporalio/workflow';
import { FailureType } from '../domain/failures';
import { count, Metrics } from '../metrics';
import {
  SettlementRefusal,
  type AttentionItem,
  type AttentionStep,
  type ResolveAttentionRequest,
  type ResolveAttentionResult,
} from './contract';
import { message, type SagaActivities } from './order-activities';

interface Parked {
  item: AttentionItem;
  run: () => Promise<void>;
  /** An admin's retry is running. */
  busy: boolean;
}

/**
 * What a resolve of a step must say it was (e.g. a capture: made by hand, or not charged),
 * and what Waybill does about it before the item closes. Throws when the provider's books
 * contradict the admin: the item stays open.
 */
interface Settler {
  settlements: readonly string[];
  /** What each settlement means, for the refusal of a resolve that names none. */
  help: string;
  settle: (settlement: string) => Promise<void>;
}

export class AttentionDesk {
  private readonly parked: Parked[] = [];
  private readonly settlers = new Map<AttentionStep, Settler>();
  /** Raises and closes written so far: each audit entry's key (stable across task retries). */
  private writes = 0;

  constructor(
    private readonly orderId: string,
    private readonly act: SagaActivities,
    /** Writes the order's status after the parked set changed. */
    private readonly changed: () => Promise<void>,
  ) {}

  get items(): AttentionItem[] {
    return this.parked.map((p) => ({ ...p.item }));
  }

  get empty(): boolean {
    return this.parked.length === 0;
  }

  has(id: string): boolean {
    return this.parked.some((p) => p.item.id === id);
  }

  /** A resolve of `step` must name one of `settler.settlements`, which runs before the item closes. */
  settledBy(step: AttentionStep, settler: Settler): void {
    this.settlers.set(step, settler);
  }

  /** Runs a step at the provider or the courier; refused for good or out of retries, it is parked. */
  async runOrPark(id: string, step: AttentionStep, run: () => Promise<void>): Promise<boolean> {
    try {
      await run();
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      await this.park(id, step, err, run);
      return false;
    }
  }

  async park(id: string, step: AttentionStep, err: unknown, run: () => Promise<void>): Promise<void> {
    const reason = message(err);
    const existing = this.parked.find((p) => p.item.id === id);
    if (existing) existing.item.reason = reason;
    else this.parked.push({ item: { id, step, reason, since: new Date().toISOString() }, run, busy: false });
    log.error('order needs attention', { itemId: id, reason });
    count(metricMeter, Metrics.ordersNeedingAttention, { step });
    await this.raise({ id, step, reason }, `needs attention: ${id}`);
    await this.changed();
  }

  /** The update's validator: an open item, not being retried, and a reason. */
  validate(request: ResolveAttentionRequest): void {
    if (!request.reason?.trim()) throw new Error('a reason is required');
    const parked = this.parked.find((p) => p.item.id === request.itemId);
    if (!parked) {
      const open = this.parked.map((p) => p.item.id).join(', ') || 'none';
      throw new Error(`no open attention item "${request.itemId}" on this order (open: ${open})`);
    }
    if (parked.busy) throw new Error(`attention item "${request.itemId}" is being retried already`);
    const settler = this.settlers.get(parked.item.step);
    const { settlement } = request;
    // Prefixed with the code the API answers 400 with.
    if (settlement === undefined) {
      if (request.action === 'resolve' && settler) {
        throw new Error(
          `${SettlementRefusal.REQUIRED}: resolving a parked ${parked.item.step} needs a settlement: ${settler.help}`,
        );
      }
    } else if (request.action !== 'resolve' || !settler) {
      throw new Error(
        `${SettlementRefusal.INVALID}: settlement applies only to a resolve of a parked ${[...this.settlers.keys()].join(' or ')}`,
      );
    } else if (!settler.settlements.includes(settlement)) {
      throw new Error(
        `${SettlementRefusal.INVALID}: settlement must be one of ${settler.settlements.join(', ')}`,
      );
    }
  }

  /** An admin retries a parked step or resolves it with a reason; audited either way. */
  async resolve(request: ResolveAttentionRequest): Promise<Omit<ResolveAttentionResult, 'order'>> {
    const parked = this.parked.find((p) => p.item.id === request.itemId)!;
    const { itemId } = request;
    if (request.action === 'resolve') {
      const settler = this.settlers.get(parked.item.step);
      if (settler && request.settlement !== undefined) await this.settle(parked, settler, request.settlement);
      await this.close(parked, 'RESOLVED', request);
      return { itemId, outcome: 'resolved', reason: null };
    }
    parked.busy = true;
    try {
      await parked.run();
    } catch (err) {
      if (isCancellation(err)) {
        parked.busy = false;
        throw err;
      }
      parked.item.reason = message(err);
      await this.raiseAgain(parked);
      return { itemId, outcome: 'still_failing', reason: parked.item.reason };
    }
    await this.close(parked, 'RETRIED', request);
    return { itemId, outcome: 'retried', reason: null };
  }

  /**
   * Carries out what the admin says was settled by hand; busy meanwhile (a retry or a second
   * resolve is refused). A refusal or a failure fails the update with its reason: the item
   * stays open with that as its reason (its row and an audit entry, as a retry that fails again).
   */
  private async settle(parked: Parked, settler: Settler, settlement: string): Promise<void> {
    parked.busy = true;
    try {
      await settler.settle(settlement);
      parked.busy = false;
    } catch (err) {
      if (isCancellation(err)) {
        parked.busy = false;
        throw err;
      }
      // The provider's books contradict the admin (refused), or it could not be asked (failed).
      const refused = err instanceof ApplicationFailure && err.type === FailureType.SETTLEMENT_REFUSED;
      parked.item.reason = `resolve as ${settlement} ${refused ? 'refused' : 'failed'}: ${message(err)}`;
      await this.raiseAgain(parked);
      throw ApplicationFailure.create({
        type: refused ? FailureType.SETTLEMENT_REFUSED : FailureType.SETTLEMENT_FAILED,
        message: `${parked.item.id} not resolved as ${settlement}: ${message(err)}`,
        nonRetryable: true,
      });
    }
  }

  /**
   * A retry or a resolve failed: the item's new reason goes on its row and in the audit log,
   * then on the order's row (its NEEDS_ATTENTION text lists every open item's reason). Still
   * busy until the item's row is written: a resolve taken meanwhile would close the row first
   * and this write, landing after it, would open it again.
   */
  private async raiseAgain(parked: Parked): Promise<void> {
    await this.raise(parked.item, `still needs attention: ${parked.item.id}`).finally(() => {
      parked.busy = false;
    });
    await this.changed();
  }

  /** Resolves once nothing is parked. */
  async clear(): Promise<void> {
    await condition(() => this.parked.length === 0);
  }

  private async raise(item: Pick<AttentionItem, 'id' | 'step' | 'reason'>, summary: string): Promise<void> {
    await this.act.always.raiseAttention.executeWithOptions({ summary }, [
      {
        orderId: this.orderId,
        itemId: item.id,
        step: item.step,
        reason: item.reason,
        raiseKey: this.auditKey(item.id),
      },
    ]);
  }

  /**
   * The audit entry's key of this raise or close: the run and how many came before it in
   * this run. The same when a workflow task is retried (the local activity runs again with
   * the same key, so the entry is written once); the history length was not, as a retried
   * task has a longer history than the attempt that wrote the entry.
   */
  private auditKey(itemId: string): string {
    return `${itemId}:${workflowInfo().runId}:${++this.writes}`;
  }

  private async close(
    parked: Parked,
    outcome: 'RETRIED' | 'RESOLVED',
    request: ResolveAttentionRequest,
  ): Promise<void> {
    this.parked.splice(this.parked.indexOf(parked), 1);
    await this.act.always.closeAttention.executeWithOptions(
      { summary: `attention ${outcome.toLowerCase()}: ${parked.item.id}` },
      [
        {
          orderId: this.orderId,
          itemId: parked.item.id,
          outcome,
          by: request.requestedBy,
          resolution: request.reason,
          settlement: request.settlement ?? null,
          actionKey: this.auditKey(parked.item.id),
        },
      ],
    );
    await this.changed();
  }
}
