/**
 * The order's customer notifications, sent one after another in the background so they never
 * hold up money or stock: a few attempts each, a 4xx from the shop's endpoint final at once,
 * and a message given up is recorded on its row for admins. Deterministic code only.
 */
import { message, type SagaActivities } from './order-activities';

export class NotificationQueue {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly orderId: string,
    private readonly act: SagaActivities,
  ) {}

  /** Queues one milestone's notification behind the ones before it (the customer reads them in order). */
  send(milestone: string, details?: Record<string, unknown>): void {
    this.queue = this.queue.then(() => this.deliver(milestone, details));
  }

  /** Resolves once every queued notification has gone out or been given up. */
  drained(): Promise<void> {
    return this.queue;
  }

  private async deliver(milestone: string, details?: Record<string, unknown>): Promise<void> {
    const { orderId } = this;
    try {
      await this.act.notify.notifyCustomer.executeWithOptions(
        { summary: `notify the customer: ${milestone}` },
        [{ orderId, milestone, ...(details ? { details } : {}) }],
      );
    } catch (err) {
      await this.act.always.recordNotificationFailed.executeWithOptions(
        { summary: `notification given up: ${milestone}` },
        [{ orderId, milestone, error: message(err) }],
      );
    }
  }
}
