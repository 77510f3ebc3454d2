/**
 * EasyParcel's own webhook shape, topic "Tracking Status Update" (`shipment.tracking.update`,
 * EasyParcel Open API docs 2025-06, "Webhooks"): the AWB, the latest status and the parcel's
 * whole `status_log`, each entry `{timestamp, shipment_status_code, tracking_status}`.
 * EasyParcel documents no signature and no delivery id it promises to keep across retries
 * (its samples reuse one `uuid` for every topic), so a push is identified by what it says:
 * the AWB and its log. Each entry is read by the rules of a polled one (push.ts,
 * easyparcel-codes.ts). The log has no place, so a courier's scan polled later with its place
 * gets a second row of the same status (docs/couriers.md#easyparcel-webhooks).
 */
import { createHash } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { PUSH_MAX_EVENTS, type PushedScan } from './push';

/** The one topic that carries scans; other topics sent to the same URL are acknowledged and ignored. */
export const EASYPARCEL_TRACKING_TOPIC = 'shipment.tracking.update';

/** A date as EasyParcel writes one: `YYYY-MM-DD HH:mm:ss` or ISO 8601 (read by easyparcel-codes.ts). */
const WHEN = '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]{5,15}(Z|[+-][0-9:]{2,5})?$';

const StatusCode = Type.Union([
  Type.Integer({ format: 'int32', minimum: 0, maximum: 999 }),
  Type.String({ pattern: '^[0-9]{1,3}$', maxLength: 3 }),
]);

const LogEntry = Type.Object(
  {
    timestamp: Type.String({
      pattern: WHEN,
      maxLength: 40,
      description:
        'When it happened: `YYYY-MM-DD HH:mm:ss` (UTC for EasyParcel\'s own "Schedule In Arrangement", Malaysia time for the couriers\' scans) or ISO 8601 with a zone',
    }),
    shipment_status_code: StatusCode,
    tracking_status: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()])),
    location: Type.Optional(
      Type.Union([Type.String({ maxLength: 200 }), Type.Null()], {
        description:
          "Not in the documented sample; read like the tracking answer's (`Place, State, MY`) when sent",
      }),
    ),
  },
  // EasyParcel may add fields; what Waybill does not read is not refused.
  { additionalProperties: true },
);
type LogEntry = Static<typeof LogEntry>;

export const EasyParcelWebhook = Type.Object(
  {
    topic: Type.String({
      pattern: '^[A-Za-z0-9._/-]{1,64}$',
      maxLength: 64,
      description: `EasyParcel's topic; only \`${EASYPARCEL_TRACKING_TOPIC}\` carries scans, the others are answered \`ignored\``,
    }),
    awb_number: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]{4,40}$', maxLength: 40 })),
    shipment_number: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$', maxLength: 64 })),
    uuid: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$', maxLength: 128 })),
    timestamp: Type.Optional(Type.String({ pattern: WHEN, maxLength: 40 })),
    latest_shipment_status_code: Type.Optional(StatusCode),
    latest_tracking_status: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()])),
    status_log: Type.Optional(
      Type.Union(
        [
          Type.Array(LogEntry, { maxItems: PUSH_MAX_EVENTS }),
          // The docs' sample numbers the entries ("0", "1"): what PHP sends for a keyed array.
          Type.Record(Type.String({ pattern: '^[0-9]{1,3}$' }), LogEntry, { maxProperties: PUSH_MAX_EVENTS }),
        ],
        {
          description:
            'The parcel\'s status log, newest first in the docs; a list or an object keyed "0", "1", …',
        },
      ),
    ),
  },
  {
    $id: 'EasyParcelWebhook',
    additionalProperties: true,
    description: "EasyParcel's webhook body as its Open API docs show it (topic Tracking Status Update)",
  },
);
export type EasyParcelWebhook = Static<typeof EasyParcelWebhook>;

/** A webhook the route must refuse (400), naming what is missing. */
export class InvalidEasyParcelWebhookError extends Error {
  override name = 'InvalidEasyParcelWebhookError';
}

/** A tracking update as Waybill's push reader takes it. */
export interface EasyParcelTrackingUpdate {
  trackingNumber: string;
  /** Stable for the same AWB and log: a redelivery is a duplicate, a longer log a new push. */
  eventId: string;
  scans: PushedScan[];
}

function entriesOf(log: NonNullable<EasyParcelWebhook['status_log']>): LogEntry[] {
  return Array.isArray(log)
    ? log
    : Object.entries(log)
        .sort(([a], [b]) => Number(a) - Number(b))
        .map(([, entry]) => entry);
}

/**
 * The scans of a `shipment.tracking.update` push; null for another topic. Throws
 * {@link InvalidEasyParcelWebhookError} when the AWB or the status log is missing or empty.
 */
export function readEasyParcelWebhook(body: EasyParcelWebhook): EasyParcelTrackingUpdate | null {
  if (body.topic !== EASYPARCEL_TRACKING_TOPIC) return null;
  if (body.awb_number === undefined) {
    throw new InvalidEasyParcelWebhookError(`a ${EASYPARCEL_TRACKING_TOPIC} push needs awb_number`);
  }
  const entries = body.status_log === undefined ? [] : entriesOf(body.status_log);
  if (entries.length === 0) {
    throw new InvalidEasyParcelWebhookError(
      `a ${EASYPARCEL_TRACKING_TOPIC} push needs status_log with at least one entry`,
    );
  }
  const scans: PushedScan[] = entries.map((entry) => ({
    code: String(entry.shipment_status_code),
    text: entry.tracking_status ?? null,
    occurredAt: entry.timestamp,
    ...(entry.location !== undefined ? { location: entry.location } : {}),
  }));
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify([
        body.awb_number,
        scans.map((s) => [s.code, s.occurredAt, s.text]).sort((a, b) => String(a).localeCompare(String(b))),
      ]),
    )
    .digest('hex')
    .slice(0, 40);
  return { trackingNumber: body.awb_number, eventId: `ep-log:${fingerprint}`, scans };
}
