/**
 * The HTTP contract of the shop's own fleet (docs/fleet.md): vehicles, drivers and their
 * tokens, runs and the dispatch queue (src/api/routes/fleet.ts), and the driver API
 * (src/api/routes/fleet-driver.ts).
 */
import { Type, type TSchema } from 'typebox';
import { DRIVER_REPORT_KINDS, FAILED_ATTEMPT_REASONS } from '../../couriers/fleet';
import { SHIPMENT_STATUSES } from '../../domain/status';
import { Id } from './admin';
import { Count, DateTime, IdText, NullableDateTime } from './common';

/** Any text but control characters: names, notes, proof references. */
const PRINTABLE = '^[^\\u0000-\\u001F\\u007F]*$';
const Printable = (maxLength: number, description: string, minLength = 1) =>
  Type.String({ minLength, maxLength, pattern: PRINTABLE, description });
const NullablePrintable = (maxLength: number, description?: string) =>
  Type.Unsafe<string | null>({
    type: ['string', 'null'],
    maxLength,
    pattern: PRINTABLE,
    ...(description ? { description } : {}),
  });
const Obj = <T extends Record<string, TSchema>>(
  properties: T,
  options: { $id?: string; description?: string } = {},
) => Type.Object(properties, { additionalProperties: false, ...options });

/** Most parcels one assignment moves, and most runs or queued parcels one list shows. */
export const ASSIGN_MAX = 200;
export const LIST_MAX = 500;

/** A fleet tracking number: `FL` and 12 digits. */
export const FleetNumber = Type.String({
  pattern: '^FL[0-9]{12}$',
  maxLength: 14,
  description: 'A fleet tracking number: FL and 12 digits',
});
const StatusName = Type.Unsafe<string>({ type: 'string', enum: SHIPMENT_STATUSES });
const RunStatusName = Type.Union([Type.Literal('OPEN'), Type.Literal('CLOSED')]);
const RunDate = Type.String({ format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$', maxLength: 10 });

// --- Vehicles and drivers ------------------------------------------------------------------

export const NewVehicle = Obj({
  registration: Type.String({
    pattern: '^[A-Z0-9][A-Z0-9 -]{0,19}$',
    maxLength: 20,
    description: 'The number plate, upper case (e.g. WXY 1234); unique',
  }),
  label: Type.Optional(Printable(100, 'What ops call it, e.g. "Van 3"')),
});
export const Vehicle = Obj(
  {
    vehicleId: IdText(),
    registration: Type.String({ maxLength: 20, pattern: '^[A-Z0-9 -]{1,20}$' }),
    label: NullablePrintable(100),
    createdAt: DateTime,
  },
  { $id: 'FleetVehicle' },
);
export const VehicleList = Obj({ vehicles: Type.Array(Type.Ref('FleetVehicle'), { maxItems: 10_000 }) });

export const NewDriver = Obj({
  name: Printable(100, "The driver's name, as ops and the driver app show it"),
  phone: Type.Optional(
    Type.String({
      pattern: '^\\+?[0-9 -]{6,20}$',
      maxLength: 20,
      description: "The driver's phone, for dispatch",
    }),
  ),
});
export const Driver = Obj(
  {
    driverId: IdText(),
    name: Printable(100, "The driver's name"),
    phone: NullablePrintable(20),
    hasToken: Type.Boolean({ description: 'Whether a driver token is live (issued and not revoked)' }),
    tokenIssuedAt: NullableDateTime,
    openRunId: Type.Unsafe<string | null>({
      type: ['string', 'null'],
      pattern: '^[A-Za-z0-9_.:-]{1,128}$',
      maxLength: 128,
    }),
  },
  { $id: 'FleetDriver' },
);
export const DriverList = Obj({ drivers: Type.Array(Type.Ref('FleetDriver'), { maxItems: 10_000 }) });
export const DriverParams = Type.Object({ driverId: Id('Driver id') });

export const IssuedToken = Obj({
  driverId: IdText(),
  token: Type.String({
    pattern: '^wbd_[A-Za-z0-9_-]{43}$',
    maxLength: 47,
    description:
      'The driver token, shown this once (only its SHA-256 is stored): the driver app sends it as `x-driver-token`. Any earlier token of this driver stops working now.',
  }),
  issuedAt: DateTime,
});

export const RevokedToken = Obj({
  driverId: IdText(),
  revoked: Type.Literal(true, { description: 'No token of this driver works any more (also when none did)' }),
});

// --- Runs and the dispatch queue -------------------------------------------------------------

export const NewRun = Obj({
  driverId: IdText('The driver of the run (one open run per driver)'),
  vehicleId: IdText('The vehicle the driver takes'),
  date: Type.Optional({ ...RunDate, description: 'The day of the run (default: today, UTC)' }),
});
export const RunParams = Type.Object({ runId: Id('Run id') });
export const RunsQuery = Type.Object({
  status: Type.Optional(RunStatusName),
  silent: Type.Optional(Type.Boolean({ description: 'true: only runs whose silent-run alarm is up' })),
  limit: Type.Optional(Type.Integer({ format: 'int32', minimum: 1, maximum: LIST_MAX, default: 100 })),
});

export const Run = Obj(
  {
    runId: IdText(),
    driverId: IdText(),
    driverName: Printable(100, "The driver's name"),
    vehicleId: IdText(),
    registration: Type.String({ maxLength: 20, pattern: '^[A-Z0-9 -]{1,20}$' }),
    date: RunDate,
    status: RunStatusName,
    createdAt: DateTime,
    closedAt: NullableDateTime,
    lastReportAt: NullableDateTime,
    silentSince: {
      ...NullableDateTime,
      description:
        'Set while the silent-run alarm is up (no driver report for the configured time); null otherwise',
    },
    silentAlarms: Count(1_000_000, 'Silent-run alarms this run has raised'),
    parcels: Count(100_000, 'Parcels on the run'),
    inHand: Count(100_000, 'Parcels on the run not yet delivered, returned or cancelled'),
  },
  { $id: 'FleetRun' },
);
export const RunList = Obj({ runs: Type.Array(Type.Ref('FleetRun'), { maxItems: LIST_MAX }) });

export const FleetParcel = Obj(
  {
    trackingNumber: FleetNumber,
    shipmentId: IdText(),
    runId: Type.Unsafe<string | null>({
      type: ['string', 'null'],
      pattern: '^[A-Za-z0-9_.:-]{1,128}$',
      maxLength: 128,
    }),
    status: StatusName,
    recipient: Obj({
      name: Printable(200, 'Recipient', 0),
      line1: Printable(200, 'Street address', 0),
      city: Printable(100, 'City', 0),
      postcode: Printable(16, 'Postcode', 0),
      phone: NullablePrintable(40),
    }),
    description: Printable(200, 'What is in it', 0),
    proofRef: NullablePrintable(200, 'The proof of delivery the driver gave'),
    lastReason: NullablePrintable(40, 'Why the last delivery attempt failed'),
    bookedAt: DateTime,
    assignedAt: NullableDateTime,
    pickedUpAt: NullableDateTime,
  },
  { $id: 'FleetParcel' },
);
export const RunDetail = Obj({
  run: Type.Ref('FleetRun'),
  parcelList: Type.Array(Type.Ref('FleetParcel'), { maxItems: 100_000 }),
});
export const QueueQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ format: 'int32', minimum: 1, maximum: LIST_MAX, default: 100 })),
});
export const Queue = Obj({ parcels: Type.Array(Type.Ref('FleetParcel'), { maxItems: LIST_MAX }) });

export const AssignBody = Obj({
  trackingNumbers: Type.Array(FleetNumber, { minItems: 1, maxItems: ASSIGN_MAX, uniqueItems: true }),
});
export const AssignOutcome = Obj({
  runId: IdText(),
  results: Type.Array(
    Obj({
      trackingNumber: FleetNumber,
      result: Type.Union(
        [
          Type.Literal('assigned'),
          Type.Literal('already_on_run'),
          Type.Literal('unknown'),
          Type.Literal('picked_up'),
          Type.Literal('cancelled'),
        ],
        {
          description:
            'assigned: now on this run (from the queue or from another run it was not picked up from); already_on_run; unknown: no fleet parcel with this number; picked_up: its driver has it, it stays where it is; cancelled: the order was cancelled',
        },
      ),
    }),
    { maxItems: ASSIGN_MAX },
  ),
});

// --- The driver API --------------------------------------------------------------------------

export const DRIVER_TOKEN_HEADER = 'x-driver-token';

export const DriverRun = Obj({
  run: Type.Unsafe<unknown>({
    anyOf: [{ $ref: 'FleetRun#' }, { type: 'null' }],
    description: "The driver's open run; null when none is open",
  }),
  parcelList: Type.Array(Type.Ref('FleetParcel'), { maxItems: 100_000 }),
});

export const DriverReport = Obj(
  {
    reportId: Type.String({
      pattern: '^[A-Za-z0-9._:-]{1,128}$',
      maxLength: 128,
      description:
        "The driver app's id of this report: a retry of the same report must carry the same id (answered `duplicate`, nothing changes)",
    }),
    trackingNumber: FleetNumber,
    kind: Type.Unsafe<string>({
      type: 'string',
      enum: DRIVER_REPORT_KINDS,
      description:
        'PICKED_UP (the driver has it: the order captures its payment), OUT_FOR_DELIVERY, DELIVERED (needs proofRef), FAILED_ATTEMPT (needs reason), RETURNED (back at the depot)',
    }),
    occurredAt: Type.Optional({
      ...DateTime,
      description:
        'When it happened (ISO 8601 with a zone); default: when received. At most 5 minutes ahead of our clock.',
    }),
    proofRef: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9._:/-]{1,200}$',
        maxLength: 200,
        description:
          'DELIVERED only, required there: the proof of delivery (photo or signature id in the driver app)',
      }),
    ),
    reason: Type.Optional(
      Type.Unsafe<string>({
        type: 'string',
        enum: [...FAILED_ATTEMPT_REASONS],
        description: 'FAILED_ATTEMPT only, required there: why delivery failed',
      }),
    ),
    note: Type.Optional(Printable(300, 'Free text for ops and the customer (e.g. "left a card")')),
  },
  { $id: 'DriverReport', description: 'One thing that happened to one parcel on the driver’s run' },
);

export const DriverReportOutcome = Obj({
  result: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate')], {
    description:
      'accepted: recorded and handed to the tracking; duplicate: this report id was accepted before, nothing done',
  }),
  reportId: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$', maxLength: 128 }),
  trackingNumber: FleetNumber,
  status: StatusName,
});

/** The shared fleet schemas the routes refer to by `$ref`: added to the app once (src/api/app.ts). */
export const FLEET_SCHEMAS = [Vehicle, Driver, Run, FleetParcel];
