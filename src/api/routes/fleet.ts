/**
 * Dispatching the shop's own fleet (`/v1/admin/fleet/…`, docs/fleet.md): vehicles and drivers
 * as records, drivers' tokens (admin), runs — a driver's day with a vehicle — and the dispatch
 * queue, where parcels booked with courier `fleet` wait until ops put them on a run.
 *
 * Opening a run starts its watch (src/workflows/fleet-run.ts), which raises the silent-run
 * alarm; closing it ends the watch and puts parcels never picked up back in the queue.
 *
 * The driver credential is a per-driver secret token, not a signed one: 256 random bits shown
 * once, stored as its SHA-256 (a fast hash is enough for a random secret, and a lookup by it is
 * one indexed read), replaced by issuing a new one and revoked at once by deleting the hash —
 * a lost phone is dealt with in one call, without rotating a key or waiting for an expiry.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import {
  assignToRun,
  closeRun,
  dispatchQueue,
  driverAndVehicleExist,
  findRun,
  insertDriver,
  insertRun,
  insertVehicle,
  listDrivers,
  listRuns,
  listVehicles,
  runParcels,
  setDriverToken,
} from '../../read-model/fleet';
import { writeAudit } from '../../read-model/audit';
import { fleetRunWorkflowId, runClosedSignal, type fleetRunWorkflow } from '../../workflows/fleet-run';
import { Permission } from '../access';
import type { ApiDeps } from '../app';
import { actorOf, requireStaff } from '../auth';
import { ApiError } from '../errors';
import { AUTH_ERRORS, errors } from '../schemas/admin';
import {
  AssignBody,
  AssignOutcome,
  DriverList,
  DriverParams,
  IssuedToken,
  NewDriver,
  NewRun,
  NewVehicle,
  Queue,
  QueueQuery,
  RevokedToken,
  RunDetail,
  RunList,
  RunParams,
  RunsQuery,
  VehicleList,
} from '../schemas/fleet';
import { hashDriverToken } from './fleet-driver';
import { parcelView, runView } from './fleet-views';

const newId = (prefix: string) => `${prefix}_${randomBytes(8).toString('hex')}`;
const notFound = (what: string) => new ApiError(404, 'NOT_FOUND', `no ${what}`);
const vehicleView = (v: { id: string; registration: string; label: string | null; created_at: Date }) => ({
  vehicleId: v.id,
  registration: v.registration,
  label: v.label,
  createdAt: v.created_at.toISOString(),
});

export const fleetRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db } = deps;
  const manage = requireStaff(Permission.MANAGE_FLEET);
  const tokens = requireStaff(Permission.MANAGE_DRIVER_TOKENS);
  const tags = ['fleet'];
  /** Who did what to which fleet record (the audit log). */
  const audit = (
    request: FastifyRequest,
    action: string,
    subjectType: 'fleet_driver' | 'fleet_run',
    subjectId: string,
    extra: { details?: Record<string, unknown>; dedupeKey?: string } = {},
  ) =>
    writeAudit(db, [
      {
        actor: actorOf(request.principal),
        action,
        subjectType,
        subjectId,
        reason: null,
        dedupeKey: extra.dedupeKey ?? null,
        ...(extra.details ? { details: extra.details } : {}),
      },
    ]);

  // --- Vehicles and drivers --------------------------------------------------------------

  app.post(
    '/v1/admin/fleet/vehicles',
    {
      schema: {
        tags,
        summary: 'Add a vehicle to the fleet',
        body: NewVehicle,
        response: { 201: Type.Ref('FleetVehicle'), ...errors(...AUTH_ERRORS, 409) },
      },
      onRequest: manage,
    },
    async (request, reply) => {
      const id = newId('veh');
      const label = request.body.label?.trim() || null;
      const row = await insertVehicle(db, { id, registration: request.body.registration, label });
      if (!row) {
        throw new ApiError(
          409,
          'REGISTRATION_TAKEN',
          `a vehicle with registration ${request.body.registration} exists`,
        );
      }
      return reply.code(201).send(vehicleView(row));
    },
  );

  app.get(
    '/v1/admin/fleet/vehicles',
    {
      schema: {
        tags,
        summary: 'The fleet’s vehicles',
        response: { 200: VehicleList, ...errors(...AUTH_ERRORS) },
      },
      onRequest: manage,
    },
    async () => ({ vehicles: (await listVehicles(db)).map(vehicleView) }),
  );

  const driverView = (d: Awaited<ReturnType<typeof listDrivers>>[number]) => ({
    driverId: d.id,
    name: d.name,
    phone: d.phone,
    hasToken: d.has_token,
    tokenIssuedAt: d.token_issued_at?.toISOString() ?? null,
    openRunId: d.open_run_id,
  });

  app.post(
    '/v1/admin/fleet/drivers',
    {
      schema: {
        tags,
        summary: 'Add a driver (then an admin issues their token)',
        body: NewDriver,
        response: { 201: Type.Ref('FleetDriver'), ...errors(...AUTH_ERRORS) },
      },
      onRequest: manage,
    },
    async (request, reply) => {
      const id = newId('drv');
      await insertDriver(db, { id, name: request.body.name.trim(), phone: request.body.phone ?? null });
      const row = (await listDrivers(db)).find((d) => d.id === id)!;
      return reply.code(201).send(driverView(row));
    },
  );

  app.get(
    '/v1/admin/fleet/drivers',
    {
      schema: {
        tags,
        summary: 'The fleet’s drivers, whether their token is live, their open run',
        response: { 200: DriverList, ...errors(...AUTH_ERRORS) },
      },
      onRequest: manage,
    },
    async () => ({ drivers: (await listDrivers(db)).map(driverView) }),
  );

  app.post(
    '/v1/admin/fleet/drivers/:driverId/token',
    {
      schema: {
        tags,
        summary: "Issue a driver's token (shown once); any earlier token of the driver stops working",
        params: DriverParams,
        response: { 201: IssuedToken, ...errors(...AUTH_ERRORS, 404) },
      },
      onRequest: tokens,
    },
    async (request, reply) => {
      const { driverId } = request.params;
      const token = `wbd_${randomBytes(32).toString('base64url')}`;
      if (!(await setDriverToken(db, driverId, hashDriverToken(token)))) throw notFound(`driver ${driverId}`);
      await audit(request, 'fleet.driver_token_issued', 'fleet_driver', driverId);
      return reply.code(201).send({ driverId, token, issuedAt: new Date().toISOString() });
    },
  );

  app.delete(
    '/v1/admin/fleet/drivers/:driverId/token',
    {
      schema: {
        tags,
        summary: "Revoke a driver's token at once (a lost phone, a driver who left)",
        params: DriverParams,
        response: { 200: RevokedToken, ...errors(...AUTH_ERRORS, 404) },
      },
      onRequest: tokens,
    },
    async (request) => {
      const { driverId } = request.params;
      if (!(await setDriverToken(db, driverId, null))) throw notFound(`driver ${driverId}`);
      await audit(request, 'fleet.driver_token_revoked', 'fleet_driver', driverId);
      return { driverId, revoked: true as const };
    },
  );

  // --- Runs and the dispatch queue ---------------------------------------------------------

  app.post(
    '/v1/admin/fleet/runs',
    {
      schema: {
        tags,
        summary: "Open a run: a driver's day with a vehicle; its silent-run watch starts now",
        body: NewRun,
        response: { 201: Type.Ref('FleetRun'), ...errors(...AUTH_ERRORS, 404, 409) },
      },
      onRequest: manage,
    },
    async (request, reply) => {
      const { driverId, vehicleId } = request.body;
      const exist = await driverAndVehicleExist(db, driverId, vehicleId);
      if (!exist.driver) throw notFound(`driver ${driverId}`);
      if (!exist.vehicle) throw notFound(`vehicle ${vehicleId}`);
      const runId = newId('run');
      const created = await insertRun(db, {
        id: runId,
        driverId,
        vehicleId,
        runDate: request.body.date ?? new Date().toISOString().slice(0, 10),
        createdBy: actorOf(request.principal),
      });
      if (created === 'driver_busy') {
        throw new ApiError(409, 'DRIVER_HAS_OPEN_RUN', `driver ${driverId} has an open run: close it first`);
      }
      try {
        await deps.temporal.client.workflow.start<typeof fleetRunWorkflow>('fleetRunWorkflow', {
          workflowId: fleetRunWorkflowId(runId),
          taskQueue: deps.config.temporal.taskQueue,
          args: [{ runId, silentAfterMs: deps.config.api.fleetSilentRunAfterMs }],
          staticSummary: `Fleet run ${runId}: silent-run watch`,
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
          // No watch, no run: the driver may be given one again once Temporal answers.
          await closeRun(db, runId);
          throw err;
        }
      }
      return reply.code(201).send(runView((await findRun(db, runId))!));
    },
  );

  app.get(
    '/v1/admin/fleet/runs',
    {
      schema: {
        tags,
        summary: 'Runs, newest first; `silent=true` lists those whose silent-run alarm is up',
        querystring: RunsQuery,
        response: { 200: RunList, ...errors(...AUTH_ERRORS) },
      },
      onRequest: manage,
    },
    async (request) => ({
      runs: (
        await listRuns(db, {
          limit: request.query.limit ?? 100,
          ...(request.query.status ? { status: request.query.status } : {}),
          ...(request.query.silent !== undefined ? { silent: request.query.silent } : {}),
        })
      ).map(runView),
    }),
  );

  app.get(
    '/v1/admin/fleet/runs/:runId',
    {
      schema: {
        tags,
        summary: 'One run and its parcels',
        params: RunParams,
        response: { 200: RunDetail, ...errors(...AUTH_ERRORS, 404) },
      },
      onRequest: manage,
    },
    async (request) => {
      const run = await findRun(db, request.params.runId);
      if (!run) throw notFound(`run ${request.params.runId}`);
      return { run: runView(run), parcelList: (await runParcels(db, run.id)).map(parcelView) };
    },
  );

  app.post(
    '/v1/admin/fleet/runs/:runId/parcels',
    {
      schema: {
        tags,
        summary:
          'Put parcels on an open run (from the queue, or from a run whose driver has not picked them up)',
        params: RunParams,
        body: AssignBody,
        response: { 200: AssignOutcome, ...errors(...AUTH_ERRORS, 404, 409) },
      },
      onRequest: manage,
    },
    async (request) => {
      const { runId } = request.params;
      const results = await assignToRun(db, runId, request.body.trackingNumbers);
      if (results === null) {
        if (!(await findRun(db, runId))) throw notFound(`run ${runId}`);
        throw new ApiError(409, 'RUN_CLOSED', `run ${runId} is closed: open a new run`);
      }
      await audit(request, 'fleet.parcels_assigned', 'fleet_run', runId, {
        details: Object.fromEntries(results),
      });
      return {
        runId,
        results: [...results].map(([trackingNumber, result]) => ({ trackingNumber, result })),
      };
    },
  );

  app.post(
    '/v1/admin/fleet/runs/:runId/close',
    {
      schema: {
        tags,
        summary: 'Close a run: parcels never picked up go back to the queue; its watch ends',
        params: RunParams,
        response: { 200: Type.Ref('FleetRun'), ...errors(...AUTH_ERRORS, 404, 409) },
      },
      onRequest: manage,
    },
    async (request) => {
      const { runId } = request.params;
      const closed = await closeRun(db, runId);
      if (closed === 'not_found') throw notFound(`run ${runId}`);
      if (typeof closed === 'object') {
        throw new ApiError(
          409,
          'PARCELS_IN_HAND',
          `the driver still has ${closed.inHand.join(', ')}: they report DELIVERED or RETURNED first`,
        );
      }
      if (closed === 'closed') {
        await audit(request, 'fleet.run_closed', 'fleet_run', runId, {
          dedupeKey: `fleet.run_closed:${runId}`,
        });
      }
      // Closing twice is harmless, and so is a watch that has already ended.
      await deps.temporal.client.workflow
        .getHandle(fleetRunWorkflowId(runId))
        .signal(runClosedSignal)
        .catch((err: unknown) =>
          request.log.warn({ err, runId }, 'could not tell the run watch of the close'),
        );
      return runView((await findRun(db, runId))!);
    },
  );

  app.get(
    '/v1/admin/fleet/queue',
    {
      schema: {
        tags,
        summary: 'The dispatch queue: fleet parcels booked and on no run yet, oldest first',
        querystring: QueueQuery,
        response: { 200: Queue, ...errors(...AUTH_ERRORS) },
      },
      onRequest: manage,
    },
    async (request) => ({ parcels: (await dispatchQueue(db, request.query.limit ?? 100)).map(parcelView) }),
  );
};
