/**
 * How the API shows a shipment's tracking, from the read model only: our own status texts
 * (never the courier's free text, which can name people), city-level places, and how
 * current the data is. Shared by the guest route, the order routes and the SSE stream.
 */
import type { Kysely } from 'kysely';
import { Type, type Static } from 'typebox';
import { RECENT_EVENTS_LIMIT, type Database } from '../../db/database';
import {
  shipmentViewsByIds,
  trackingShipmentOf,
  type ShipmentViewRow,
  type TrackingShipment,
} from '../read-model/order-tracking';
import { SHIPMENT_STATUSES, type ShipmentStatus } from '../domain/status';
import { freshnessOf, type Freshness, type FreshnessRule } from '../domain/freshness';
import { STATUS_TEXT } from './freshness';
import { asIsoUtc, isoUtc } from './iso-time';
import {
  CourierCodeText,
  DateTime,
  IdText,
  NullableDateTime,
  NullableText,
  Text,
  TrackingNumber,
} from './schemas/common';

export const StatusSchema = Type.Unsafe<ShipmentStatus>({
  type: 'string',
  enum: [...SHIPMENT_STATUSES],
  description: 'Normalised shipment status',
});

export const TrackingEventView = Type.Object(
  {
    status: StatusSchema,
    description: Text(500, { description: 'Our own text for the status, or the courier scan text' }),
    occurredAt: DateTime,
    city: NullableText(100),
    country: Type.Union([Type.String({ pattern: '^[A-Z]{2}$', maxLength: 2 }), Type.Null()], {
      description: 'ISO 3166-1 alpha-2',
    }),
  },
  { additionalProperties: false },
);

/** What became of a live refresh (`?refresh=true`) of one shipment. */
export const RefreshOutcome = {
  /** The courier answered during this request; the data shown is that answer. */
  LIVE: 'live',
  /** The courier was asked less than the refresh cooldown ago: that answer is shown. */
  COOLDOWN: 'cooldown',
  /** The customer's live-refresh quota for the window is used up. */
  QUOTA: 'quota',
  /** The courier could not be asked (down, refusing, retries exhausted). */
  COURIER_UNAVAILABLE: 'courier_unavailable',
  /** Today's courier call budget is used up. */
  BUDGET_EXHAUSTED: 'budget_exhausted',
  /** The poll did not finish within the request's deadline (it still lands in the read model). */
  TIMEOUT: 'timeout',
  /** Temporal could not be reached. */
  TEMPORAL_UNAVAILABLE: 'temporal_unavailable',
  /**
   * Temporal refused the refresh for load or a limit: as many refreshes of this parcel are
   * under way as its workflow takes at once (their answer reaches the read model), or the
   * service as a whole is busy.
   */
  BUSY: 'busy',
  /** No tracking workflow runs for it (yet). */
  NOT_TRACKING: 'not_tracking',
  /** Tracking has finished: the data is final. */
  FINISHED: 'finished',
} as const;
export type RefreshOutcome = (typeof RefreshOutcome)[keyof typeof RefreshOutcome];

export interface ShipmentRefresh {
  outcome: RefreshOutcome;
  /** When a live refresh of this shipment can next reach the courier; null: now, or never (finished). */
  nextLiveRefreshAt: Date | null;
}

export const DataSource = Type.Object(
  {
    isLive: Type.Boolean({ description: 'Fetched from the courier during this request' }),
    isCached: Type.Boolean({ description: 'Served from the last stored sync' }),
    unavailable: Type.Boolean({ description: 'The courier could not be reached at the last attempt' }),
    refresh: Type.Unsafe<RefreshOutcome | null>({
      type: ['string', 'null'],
      enum: [...Object.values(RefreshOutcome), null],
      description:
        'With ?refresh=true: live, or why not (cooldown: the courier was asked moments ago; quota: your live refreshes for the window are used up; courier_unavailable; budget_exhausted; timeout; temporal_unavailable; busy: the workflow service refused it for load, or the refreshes of this parcel already under way fill its limit; not_tracking; finished). Null when no refresh was asked.',
    }),
    nextLiveRefreshAt: Type.Union([DateTime, Type.Null()], {
      description:
        'With ?refresh=true: when a live refresh can next reach the courier for this shipment (end of the cooldown or of the quota window); null when it can now, or never',
    }),
  },
  { additionalProperties: false },
);

export const ShipmentTrackingView = Type.Object(
  {
    shipmentId: IdText(),
    trackingNumber: TrackingNumber,
    courier: CourierCodeText(),
    status: StatusSchema,
    description: Text(500),
    eta: NullableDateTime,
    lastUpdatedAt: NullableDateTime,
    freshness: Type.Unsafe<Freshness>({ type: 'string', enum: ['fresh', 'stale', 'expired'] }),
    dataSource: DataSource,
    events: Type.Array(TrackingEventView, { maxItems: RECENT_EVENTS_LIMIT, description: 'Newest first' }),
  },
  { additionalProperties: false },
);
export type ShipmentTrackingView = Static<typeof ShipmentTrackingView>;

/** Newest first, capped: a parcel with more scans than this shows its latest ones. */
export const MAX_EVENTS = RECENT_EVENTS_LIMIT;

/** ISO 8601 in UTC of epoch ms, or null. */
const isoOrNull = (ms: number | null) => (ms === null ? null : isoUtc(ms));
const dateOrNull = (ms: number | null) => (ms === null ? null : new Date(ms));

/** Builds the views of these shipments (src/read-model/order-tracking.ts); `refreshes` by shipment id when one was asked. */
export function toTrackingViews(
  shipments: TrackingShipment[],
  rule: FreshnessRule,
  refreshes: ReadonlyMap<string, ShipmentRefresh> = new Map(),
): ShipmentTrackingView[] {
  const nowMs = Date.now();
  return shipments.map((shipment) => {
    const status = shipment.status as ShipmentStatus;
    const refresh = refreshes.get(shipment.id) ?? null;
    const live = refresh?.outcome === RefreshOutcome.LIVE;
    return {
      shipmentId: shipment.id,
      trackingNumber: shipment.trackingNumber,
      courier: shipment.courier,
      status,
      description: STATUS_TEXT[status],
      eta: isoOrNull(shipment.eta),
      lastUpdatedAt: isoOrNull(shipment.lastSyncedAt),
      freshness: freshnessOf(
        {
          status,
          lastSyncedAt: dateOrNull(shipment.lastSyncedAt),
          nextPollAt: dateOrNull(shipment.nextPollAt),
          syncFailingSince: dateOrNull(shipment.syncFailingSince),
          createdAt: new Date(shipment.createdAt),
        },
        rule,
        nowMs,
      ),
      dataSource: {
        isLive: live,
        isCached: !live,
        unavailable: shipment.syncError !== null,
        refresh: refresh?.outcome ?? null,
        nextLiveRefreshAt: refresh?.nextLiveRefreshAt?.toISOString() ?? null,
      },
      // Written in the API's form by the record activity; older rows are rewritten here.
      events: shipment.events.slice(0, MAX_EVENTS).map((e) => ({
        status: e.status as ShipmentStatus,
        description: STATUS_TEXT[e.status as ShipmentStatus],
        occurredAt: asIsoUtc(e.occurredAt),
        city: e.city,
        country: e.country,
      })),
    };
  });
}

/** The views of these shipments (re-read with their events, in the given order). */
export async function trackingViews(
  db: Kysely<Database>,
  shipments: { id: string }[],
  rule: FreshnessRule,
): Promise<ShipmentTrackingView[]> {
  if (shipments.length === 0) return [];
  const rows = await shipmentViewsByIds(
    db,
    shipments.map((s) => s.id),
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const ordered = shipments.map((s) => byId.get(s.id)).filter((r): r is ShipmentViewRow => r !== undefined);
  return toTrackingViews(ordered.map(trackingShipmentOf), rule);
}
