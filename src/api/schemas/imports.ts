/**
 * The HTTP contract of parcel imports (src/api/routes/imports.ts): a list of parcels already
 * in flight, sent as JSON or CSV, and the import's progress with its per-line results.
 */
import { Type } from 'typebox';
import { Id } from './admin';
import { Count, DateTime, IdText, NullableDateTime, NullableText } from './common';

/** Most lines one import takes. */
export const IMPORT_MAX_LINES = 10_000;
/** The largest import body (JSON or CSV): 10,000 lines of about 100 bytes, with room. */
export const IMPORT_BODY_LIMIT_BYTES = 2 * 1024 * 1024;
/** Imports one caller may send per minute (each can start 10,000 workflows). */
export const IMPORTS_PER_MINUTE = 10;
export const IMPORT_PAGE_DEFAULT = 100;
const IMPORT_PAGE_MAX = 500;

/** What an import line's fields may hold: any text but control characters (lines and cells are one line each). */
const PRINTABLE = '^[^\\u0000-\\u001F\\u007F]*$';
const Field = (maxLength: number, description: string) =>
  Type.Optional(Type.String({ maxLength, pattern: PRINTABLE, description }));
const NullableField = (maxLength: number) =>
  Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength, pattern: PRINTABLE });

/** The CSV columns, in the JSON fields' names (a header may spell them snake_case or in any case). */
export const IMPORT_COLUMNS = ['courier', 'trackingNumber', 'orderReference', 'email', 'postcode'] as const;

/**
 * One parcel. Every field is optional here: a line missing its courier or tracking number
 * (or with a bad e-mail) is not a malformed request but a rejected line, reported with the
 * others in the import's results.
 */
export const ImportLine = Type.Object(
  {
    courier: Field(40, 'Courier code: easyparcel, bluedart or simulator'),
    trackingNumber: Field(64, "The courier's tracking number"),
    orderReference: Field(128, "The shop's own order reference, kept with the line"),
    email: Field(254, "The recipient's e-mail, kept with the line"),
    postcode: Field(16, "The recipient's postcode, kept with the line"),
  },
  { additionalProperties: false },
);

export const ImportBody = Type.Object(
  { parcels: Type.Array(ImportLine, { minItems: 1, maxItems: IMPORT_MAX_LINES }) },
  { additionalProperties: false },
);

const Lines = Count(IMPORT_MAX_LINES);
const ImportStatusName = Type.Union([Type.Literal('RUNNING'), Type.Literal('DONE')]);
export const ImportResultName = Type.Union([
  Type.Literal('pending'),
  Type.Literal('started'),
  Type.Literal('already_tracked'),
  Type.Literal('rejected'),
]);

export const ImportAccepted = Type.Object(
  {
    importId: IdText(),
    status: ImportStatusName,
    total: Lines,
    links: Type.Object(
      { self: Type.String({ pattern: '^/v1/admin/imports/[A-Za-z0-9_.:-]{1,128}$', maxLength: 147 }) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const ImportParams = Type.Object({ importId: Id('Import id') });

export const ImportQuery = Type.Object(
  {
    afterLine: Type.Optional(Count(IMPORT_MAX_LINES, 'Lines after this line number (0: from the first)')),
    limit: Type.Optional(
      Type.Integer({ format: 'int32', minimum: 1, maximum: IMPORT_PAGE_MAX, default: IMPORT_PAGE_DEFAULT }),
    ),
    result: Type.Optional(ImportResultName),
  },
  { additionalProperties: false },
);

const ImportLineView = Type.Object(
  {
    line: Lines,
    courier: NullableField(40),
    trackingNumber: NullableField(64),
    orderReference: NullableField(128),
    result: ImportResultName,
    reason: NullableText(400),
    shipmentId: Type.Unsafe<string | null>({
      type: ['string', 'null'],
      pattern: '^[A-Za-z0-9_.:-]{1,128}$',
      maxLength: 128,
    }),
    firstPollAt: NullableDateTime,
  },
  { additionalProperties: false },
);

export const ImportProgress = Type.Object(
  {
    importId: IdText(),
    status: ImportStatusName,
    source: Type.Union([Type.Literal('json'), Type.Literal('csv')]),
    total: Lines,
    done: Lines,
    counts: Type.Object(
      { started: Lines, alreadyTracked: Lines, rejected: Lines },
      { additionalProperties: false },
    ),
    createdAt: DateTime,
    finishedAt: NullableDateTime,
    lines: Type.Array(ImportLineView, { maxItems: IMPORT_PAGE_MAX }),
    nextAfterLine: Type.Unsafe<number | null>({
      type: ['integer', 'null'],
      format: 'int32',
      minimum: 0,
      maximum: IMPORT_MAX_LINES,
    }),
  },
  { additionalProperties: false },
);
