/**
 * Housekeeping (`waybill-housekeeping` schedule): expire unscanned shipments nobody tracks
 * any more (telling their orders), close orders whose workflow never started, archive
 * finished shipments, scrub personal data from old raw courier payloads and old parcel
 * import lines, delete old
 * idempotency keys, courier push dedupe rows, sent notifications, domain events no enabled
 * endpoint waits for and settled EasyParcel submissions. Each step works in bounded batches (at most `maxBatches` per run; the next run carries on).
 * A step that fails does not stop the others; the run then fails naming it, so the UI
 * shows it. Deterministic code only.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  log,
  proxyActivities,
  setCurrentDetails,
} from '@temporalio/workflow';
import type { HousekeepingActivities, Prunable } from '../activities/housekeeping';
import {
  DEFAULT_TRACKING_RESTART_WINDOW_MS,
  type HousekeepingInput,
  type HousekeepingResult,
} from './contract';
import { FailureType } from '../domain/failures';

const activities = proxyActivities<HousekeepingActivities>({
  startToCloseTimeout: '5m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
});

function reason(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

export async function housekeepingWorkflow(input: HousekeepingInput): Promise<HousekeepingResult> {
  const result: HousekeepingResult = {
    expired: 0,
    skippedRunning: 0,
    archived: 0,
    scrubbed: 0,
    scrubbedImportLines: 0,
    ordersNotStarted: 0,
    prunedIdempotencyKeys: 0,
    prunedWebhookEvents: 0,
    prunedNotifications: 0,
    prunedEvents: 0,
    prunedEasyParcelSubmissions: 0,
    caughtUp: true,
  };
  const failed: string[] = [];
  const progress = (step: string) =>
    setCurrentDetails(
      `${step} · expired ${result.expired} (left ${result.skippedRunning} to their tracking: running, or awaiting a restart), ` +
        `closed ${result.ordersNotStarted} orders that never started, ` +
        `archived ${result.archived}, scrubbed ${result.scrubbed} (and ${result.scrubbedImportLines} import lines), ` +
        `pruned ${result.prunedIdempotencyKeys} idempotency keys, ${result.prunedWebhookEvents} push dedupe rows, ` +
        `${result.prunedNotifications} notifications, ${result.prunedEvents} domain events, ` +
        `${result.prunedEasyParcelSubmissions} EasyParcel submissions`,
    );

  async function step(name: string, run: () => Promise<void>): Promise<void> {
    progress(name);
    try {
      await run();
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      log.error(`housekeeping: ${name} failed`, { error: reason(err) });
      failed.push(`${name}: ${reason(err)}`);
    }
  }

  await step('expiring unscanned shipments', async () => {
    let afterId: string | null = null;
    for (let batch = 1; batch <= input.maxBatches; batch++) {
      const r = await activities.expireUnscannedShipments.executeWithOptions(
        { summary: `expire shipments with no scan for ${hours(input.expireAfterNoScanMs)}, batch ${batch}` },
        [
          {
            expireAfterNoScanMs: input.expireAfterNoScanMs,
            restartWindowMs: input.trackingRestartWindowMs ?? DEFAULT_TRACKING_RESTART_WINDOW_MS,
            batchSize: input.batchSize,
            afterId,
          },
        ],
      );
      result.expired += r.expired;
      result.skippedRunning += r.skippedRunning;
      afterId = r.nextAfterId;
      if (afterId === null) return;
    }
    result.caughtUp = false;
  });

  await step('closing orders that never started', async () => {
    let afterId: string | null = null;
    for (let batch = 1; batch <= input.maxBatches; batch++) {
      const r = await activities.failUnstartedOrders.executeWithOptions(
        {
          summary: `close PENDING orders older than ${minutes(input.orderStartGraceMs)} with no workflow, batch ${batch}`,
        },
        [{ olderThanMs: input.orderStartGraceMs, batchSize: input.batchSize, afterId }],
      );
      result.ordersNotStarted += r.failed;
      afterId = r.nextAfterId;
      if (afterId === null) return;
    }
    result.caughtUp = false;
  });

  await step('archiving finished shipments', async () => {
    for (let batch = 1; batch <= input.maxBatches; batch++) {
      const r = await activities.archiveFinishedShipments.executeWithOptions(
        { summary: `archive shipments finished over ${days(input.archiveAfterMs)} ago, batch ${batch}` },
        [{ olderThanMs: input.archiveAfterMs, batchSize: input.batchSize }],
      );
      result.archived += r.changed;
      if (!r.more) return;
    }
    result.caughtUp = false;
  });

  const scrubs = [
    { what: 'shipments', run: activities.scrubFinishedShipments, add: (n: number) => (result.scrubbed += n) },
    {
      what: 'parcel imports',
      run: activities.scrubFinishedImports,
      add: (n: number) => (result.scrubbedImportLines += n),
    },
  ];
  for (const scrub of scrubs) {
    await step(`scrubbing personal data of ${scrub.what}`, async () => {
      for (let batch = 1; batch <= input.maxBatches; batch++) {
        const r = await scrub.run.executeWithOptions(
          {
            summary: `scrub personal data of ${scrub.what} finished over ${days(input.scrubPersonalDataAfterMs)} ago, batch ${batch}`,
          },
          [{ olderThanMs: input.scrubPersonalDataAfterMs, batchSize: input.batchSize }],
        );
        scrub.add(r.changed);
        if (!r.more) return;
      }
      result.caughtUp = false;
    });
  }

  // Kinds are written out (not imported): workflow code takes only types from activities.
  const prunes: { kind: Prunable; what: string; olderThanMs: number; add: (n: number) => void }[] = [
    {
      kind: 'idempotencyKeys',
      what: 'finished idempotency keys',
      olderThanMs: input.pruneIdempotencyKeysAfterMs,
      add: (n) => (result.prunedIdempotencyKeys += n),
    },
    {
      kind: 'webhookEvents',
      what: 'courier push dedupe rows',
      olderThanMs: input.pruneWebhookEventsAfterMs,
      add: (n) => (result.prunedWebhookEvents += n),
    },
    {
      kind: 'notifications',
      what: 'sent notifications',
      olderThanMs: input.pruneNotificationsAfterMs,
      add: (n) => (result.prunedNotifications += n),
    },
    {
      kind: 'events',
      what: 'delivered or abandoned domain events',
      olderThanMs: input.pruneEventsAfterMs,
      add: (n) => (result.prunedEvents += n),
    },
    {
      kind: 'easyParcelSubmissions',
      what: 'settled EasyParcel submissions',
      // The journal of a booking whose order has finished: kept as long as the domain events.
      olderThanMs: input.pruneEventsAfterMs,
      add: (n) => (result.prunedEasyParcelSubmissions += n),
    },
  ];
  for (const prune of prunes) {
    await step(`pruning ${prune.what}`, async () => {
      for (let batch = 1; batch <= input.maxBatches; batch++) {
        const r = await activities.pruneOldRows.executeWithOptions(
          { summary: `delete ${prune.what} older than ${days(prune.olderThanMs)}, batch ${batch}` },
          [{ kind: prune.kind, olderThanMs: prune.olderThanMs, batchSize: input.batchSize }],
        );
        prune.add(r.changed);
        if (!r.more) return;
      }
      result.caughtUp = false;
    });
  }

  progress(
    failed.length > 0
      ? 'finished with failures'
      : result.caughtUp
        ? 'done'
        : 'done for this run; more next run',
  );
  if (failed.length > 0) {
    throw ApplicationFailure.create({
      type: FailureType.HOUSEKEEPING_INCOMPLETE,
      message: `housekeeping steps failed: ${failed.join('; ')}`,
      details: [result],
      nonRetryable: true,
    });
  }
  return result;
}

function minutes(ms: number): string {
  return ms % 3_600_000 === 0 ? hours(ms) : `${Math.round(ms / 60_000)} min`;
}

function hours(ms: number): string {
  return ms % 86_400_000 === 0 ? days(ms) : `${Math.round(ms / 3_600_000)} h`;
}

function days(ms: number): string {
  const d = ms / 86_400_000;
  return Number.isInteger(d) ? `${d} d` : `${Math.round(ms / 3_600_000)} h`;
}
