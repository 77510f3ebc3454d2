/**
 * The driver API (docs/fleet.md): a driver of the shop's own fleet reads their open run and
 * reports what happened to each parcel on it. The credential is the driver's own token
 * (`x-driver-token`), issued by an admin and stored as its SHA-256 only (routes/fleet.ts).
 *
 * A report is validated (the parcel is on this driver's open run; DELIVERED carries a proof
 * reference, FAILED_ATTEMPT a reason; the parcel's status allows it), recorded once per
 * (driver, report id) — a retry is answered `duplicate` and changes nothing — and handed to
 * the parcel's shipment workflow as pushed events, the same `courierEvents` signal a courier
 * webhook sends; the order saga hears of pickup (capture) and delivery from there as with any
 * courier. Postgres first: the report is committed, then the parcel's whole report log is
 * signalled (keyed by report id, so nothing is applied twice). If that signal cannot be sent
 * the driver app is told to retry (503); the retry is answered `duplicate` and signals again.
 * Reports must come in the order they happened (409 for one dated before the parcel's latest).
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import { parcelEvents, REPORT_RULES, type DriverReportKind } from '../../couriers/fleet';
import { isTerminal, ShipmentStatus } from '../../domain/status';
import {
  driverByTokenHash,
  findReport,
  fleetParcelView,
  lockReportedParcel,
  openRunOfDriver,
  recordReport,
  RunStatus,
  runParcels,
} from '../../read-model/fleet';
import { fleetRunWorkflowId, runReportSignal } from '../../workflows/fleet-run';
import type { ApiDeps } from '../app';
import { ApiError } from '../errors';
import { errors } from '../schemas/admin';
import { DRIVER_TOKEN_HEADER, DriverReport, DriverReportOutcome, DriverRun } from '../schemas/fleet';
import { signalShipmentEvents } from '../shipment-signal';
import { parcelView, runView } from './fleet-views';

declare module 'fastify' {
  interface FastifyRequest {
    driver?: { id: string; name: string };
  }
}

const TOKEN = /^wbd_[A-Za-z0-9_-]{43}$/;

export const hashDriverToken = (token: string): Buffer => createHash('sha256').update(token).digest();

const conflict = (code: string, message: string) => new ApiError(409, code, message);

export const fleetDriverRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db } = deps;

  /** Before validation: nobody without a live driver token learns anything about the body. */
  async function requireDriver(request: FastifyRequest): Promise<void> {
    const given = request.headers[DRIVER_TOKEN_HEADER];
    if (given === undefined) {
      throw new ApiError(401, 'DRIVER_TOKEN_REQUIRED', `send the driver's token as ${DRIVER_TOKEN_HEADER}`);
    }
    if (typeof given !== 'string' || !TOKEN.test(given)) {
      throw new ApiError(
        401,
        'INVALID_DRIVER_TOKEN',
        `${DRIVER_TOKEN_HEADER} must be a driver token (wbd_…)`,
      );
    }
    const driver = await driverByTokenHash(db, hashDriverToken(given));
    if (!driver) {
      throw new ApiError(
        401,
        'INVALID_DRIVER_TOKEN',
        'this driver token is not valid (revoked or replaced): ask dispatch for a new one',
      );
    }
    request.driver = driver;
  }
  const driverOf = (request: FastifyRequest) => request.driver!;
  const security = [{ driverToken: [] }];

  app.get(
    '/v1/driver/run',
    {
      schema: {
        tags: ['fleet'],
        summary: "The driver's open run and its parcels (with the addresses to deliver to)",
        security,
        response: { 200: DriverRun, ...errors(401) },
      },
      onRequest: requireDriver,
    },
    async (request) => {
      const run = await openRunOfDriver(db, driverOf(request).id);
      if (!run) return { run: null, parcelList: [] };
      return { run: runView(run), parcelList: (await runParcels(db, run.id)).map(parcelView) };
    },
  );

  app.post(
    '/v1/driver/reports',
    {
      schema: {
        tags: ['fleet'],
        summary: 'A driver reports what happened to a parcel on their run; it reaches the tracking at once',
        description: [
          'PICKED_UP → IN_TRANSIT (the order captures its payment, as at any courier pickup),',
          'OUT_FOR_DELIVERY, DELIVERED (needs `proofRef`), FAILED_ATTEMPT → ATTEMPT_FAIL (needs `reason`),',
          'RETURNED (back at the depot: the order restocks and refunds). A retry with the same',
          '`reportId` is answered `duplicate` and changes nothing; the same id for another',
          "parcel or kind is 409, and so is a report dated before the parcel's latest one.",
          '503 means "retry with the same reportId": the report may be recorded but has not reached the tracking.',
        ].join(' '),
        security,
        body: DriverReport,
        response: { 200: DriverReportOutcome, ...errors(401, 403, 404, 409, 503) },
      },
      preValidation: requireDriver,
    },
    async (request) => {
      const driver = driverOf(request);
      const body = request.body;
      const kind = body.kind as DriverReportKind;
      const rule = REPORT_RULES[kind];
      if (kind === 'DELIVERED' && body.proofRef === undefined) {
        throw new ApiError(400, 'PROOF_REQUIRED', 'a DELIVERED report needs proofRef: the proof of delivery');
      }
      if (kind === 'FAILED_ATTEMPT' && body.reason === undefined) {
        throw new ApiError(
          400,
          'REASON_REQUIRED',
          'a FAILED_ATTEMPT report needs reason: why delivery failed',
        );
      }
      if (kind !== 'DELIVERED' && body.proofRef !== undefined) {
        throw new ApiError(400, 'VALIDATION_FAILED', 'body: proofRef goes with DELIVERED only');
      }
      if (kind !== 'FAILED_ATTEMPT' && body.reason !== undefined) {
        throw new ApiError(400, 'VALIDATION_FAILED', 'body: reason goes with FAILED_ATTEMPT only');
      }
      const now = Date.now();
      const occurredAt = body.occurredAt === undefined ? new Date(now) : new Date(body.occurredAt);
      const skewMs = deps.config.api.pushMaxClockSkewMs;
      if (occurredAt.getTime() - now > skewMs) {
        throw new ApiError(
          400,
          'INVALID_REPORT',
          `occurredAt is more than ${Math.round(skewMs / 1000)} s ahead of our clock: check the phone's clock and time zone`,
        );
      }
      const duplicate = (status: string) => ({
        result: 'duplicate' as const,
        reportId: body.reportId,
        trackingNumber: body.trackingNumber,
        status,
      });
      const sentBefore = async () => {
        const before = await findReport(db, driver.id, body.reportId);
        if (!before) return null;
        if (before.tracking_number !== body.trackingNumber || before.kind !== kind) {
          throw conflict(
            'REPORT_ID_REUSED',
            `report ${body.reportId} was sent before for ${before.tracking_number} (${before.kind}): give each report its own id`,
          );
        }
        // The first request may have been recorded and then failed to reach the tracking:
        // a retry hands the log over again (the same events, by report id, change nothing twice).
        await handOver();
        return duplicate(before.status);
      };
      /**
       * Hands the parcel's whole report log to its shipment workflow, after the report is
       * committed (never inside the transaction: a signal that landed for a report that then
       * failed to commit would be a pickup Postgres never heard of). The whole log, so a report
       * whose own hand-over failed reaches the tracking with the next one at the latest.
       */
      async function handOver(): Promise<void> {
        const view = await fleetParcelView(db, body.trackingNumber);
        if (!view || view.reports.length === 0) return;
        try {
          await signalShipmentEvents(deps, view.shipmentId, parcelEvents(view));
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) {
            // No run of the parcel's tracking now: not started yet (the order starts it just
            // after booking), waiting for a restart, or finished since the check before
            // recording. A run that starts reads the report from Postgres.
            request.log.warn(
              { err, trackingNumber: body.trackingNumber, reportId: body.reportId },
              'driver report recorded while no tracking run was there to take it; a run starting reads it',
            );
            return;
          }
          request.log.warn({ err, reportId: body.reportId }, 'driver report recorded, not yet handed over');
          throw new ApiError(
            503,
            'TRACKING_UNAVAILABLE',
            `report ${body.reportId} is recorded but has not reached the parcel's tracking yet: send it again with the same reportId`,
          );
        }
      }
      const earlier = await sentBefore();
      if (earlier) return earlier;

      const report = {
        kind,
        occurredAt: occurredAt.toISOString(),
        proofRef: body.proofRef ?? null,
        reason: body.reason ?? null,
        note: body.note ?? null,
      };
      const outcome = await db.transaction().execute(async (trx) => {
        const parcel = await lockReportedParcel(trx, body.trackingNumber);
        if (!parcel) {
          throw new ApiError(404, 'PARCEL_NOT_FOUND', `no fleet parcel ${body.trackingNumber}`);
        }
        if (parcel.driver_id !== driver.id || parcel.run_status !== RunStatus.OPEN) {
          throw new ApiError(
            403,
            'NOT_ON_YOUR_RUN',
            `${body.trackingNumber} is not on your open run: ask dispatch to put it there`,
          );
        }
        const from = parcel.status as ShipmentStatus;
        if (from === ShipmentStatus.CANCELLED) {
          throw conflict(
            'PARCEL_CANCELLED',
            `${body.trackingNumber} was cancelled: do not deliver it, bring it back`,
          );
        }
        if (parcel.tracking_status !== null && isTerminal(parcel.tracking_status as ShipmentStatus)) {
          throw conflict(
            'TRACKING_FINISHED',
            `tracking of ${body.trackingNumber} has finished (${parcel.tracking_status}): tell dispatch`,
          );
        }
        if (!rule.from.includes(from)) {
          throw conflict(
            'REPORT_NOT_ALLOWED',
            `${body.trackingNumber} is ${from}: ${kind} follows ${rule.from.join(' or ')}`,
          );
        }
        // Reports are applied in the order they happened, in Postgres and in the tracking
        // alike; one dated before what is already known would leave the two disagreeing.
        const outOfOrder = (what: string, at: Date) =>
          conflict(
            'REPORT_OUT_OF_ORDER',
            `occurredAt ${occurredAt.toISOString()} is before ${what} (${at.toISOString()}): send reports in the order they happened, and check the phone's clock`,
          );
        const latest = parcel.latest_report_at === null ? null : new Date(parcel.latest_report_at);
        if (latest !== null && occurredAt < latest) throw outOfOrder("this parcel's latest report", latest);
        // Before the parcel was on the run (beyond the phone clock's allowed skew) it cannot
        // have been picked up; the tracking would take such a report as old history.
        if (parcel.assigned_at !== null && occurredAt.getTime() < parcel.assigned_at.getTime() - skewMs) {
          throw outOfOrder('it was put on your run', parcel.assigned_at);
        }
        const recorded = await recordReport(trx, {
          driverId: driver.id,
          reportId: body.reportId,
          runId: parcel.run_id!,
          shipmentId: parcel.shipment_id,
          ...report,
          status: rule.status,
        });
        if (!recorded) return null; // the same report, racing itself
        return { runId: parcel.run_id!, status: rule.status };
      });
      if (outcome === null) return (await sentBefore())!;
      await handOver();
      // The run's watch starts its silence timer again; a lost signal only delays that, as
      // the watch reads the run's last report from Postgres before raising anything.
      await deps.temporal.client.workflow
        .getHandle(fleetRunWorkflowId(outcome.runId))
        .signal(runReportSignal)
        .catch((err: unknown) =>
          request.log.warn({ err, runId: outcome.runId }, 'could not tell the fleet run watch of a report'),
        );
      request.log.info(
        { driverId: driver.id, reportId: body.reportId, trackingNumber: body.trackingNumber, kind },
        'driver report handed to the shipment workflow',
      );
      return {
        result: 'accepted' as const,
        reportId: body.reportId,
        trackingNumber: body.trackingNumber,
        status: outcome.status,
      };
    },
  );
};
