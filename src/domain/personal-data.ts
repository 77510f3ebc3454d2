/**
 * Scrubbing personal data out of what couriers send us, for housekeeping: once a shipment
 * has been finished long enough (WAYBILL_SCRUB_PII_AFTER) nobody needs to know who signed
 * for it. Adapters already drop the fields they know at ingest (Blue Dart's Consignee*,
 * ReceivedBy); this is the sweep for everything else — other couriers' shapes, free text,
 * rows stored before an adapter learnt a field. It errs on the side of removing too much:
 * the normalised columns keep everything Waybill itself uses. Pure code.
 */

export const REMOVED = '[removed]';

/** Key words that name a person or how to reach one. */
const PERSONAL_WORDS = new Set([
  'name',
  'firstname',
  'lastname',
  'fullname',
  'consignee',
  'receiver',
  'recipient',
  'signature',
  'signatory',
  'signer',
  'phone',
  'mobile',
  'tel',
  'telephone',
  'email',
  'mail',
  'address',
  'address1',
  'address2',
  'address3',
  'street',
  'postcode',
  'pincode',
  'zip',
  'zipcode',
  'contact',
  'pod',
  'photo',
  'image',
  'lat',
  'lng',
  'lon',
  'latitude',
  'longitude',
  'customer',
  'buyer',
]);
/** Key words of values that identify a parcel or a time, never a person: kept verbatim. */
const IDENTIFIER_WORDS = new Set([
  'awb',
  'waybill',
  'tracking',
  'number',
  'no',
  'code',
  'ref',
  'id',
  'date',
  'time',
]);

/** `ConsigneeAddress1` → consignee, address1; `received_by` → received, by; `@WaybillNo` → waybill, no. */
function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** Whether a payload key holds personal data (the whole value goes). */
export function isPersonalKey(key: string): boolean {
  const parts = words(key);
  const joined = parts.join('');
  return (
    parts.some((w) => PERSONAL_WORDS.has(w)) || /^(receivedby|signedby|deliveredto|collectedby)/.test(joined)
  );
}

const EMAIL = /[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}/gi;
/** 8 to 15 digits, optionally grouped by single spaces, dashes or dots, optionally after a +. */
const PHONE = /(?<![\w:/])\+?\d(?:[ .-]?\d){7,14}(?![\w:/])/g;
const DATE_LIKE = /^(\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})$/;
/** Phrases couriers put before the name of whoever took the parcel. */
const NAME_AFTER =
  /\b(received by|signed by|delivered to|collected by|handed over to|attn|c\/o|name)(\s*[:-]\s*|\s+)([^,;()\n]+)/gi;

/** Free text with e-mail addresses, phone numbers and the names after "received by", "signed by"… removed. */
export function redactPersonalText(text: string): string {
  return text
    .replace(EMAIL, REMOVED)
    .replace(PHONE, (match) => (DATE_LIKE.test(match) ? match : REMOVED))
    .replace(NAME_AFTER, (_match, marker: string, separator: string, rest: string) => {
      const trailing = /\s*$/.exec(rest)![0];
      return `${marker}${separator}${REMOVED}${trailing}`;
    });
}

/**
 * A courier payload (parsed JSON, or XML parsed to objects) without personal data: personal
 * keys dropped, every other string redacted as free text, except parcel identifiers and
 * dates (AWB numbers are long digit runs that would read as phone numbers).
 */
export function scrubPersonalData(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((item) => scrubPersonalData(item, key));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([k]) => !isPersonalKey(k))
        .map(([k, v]) => [k, scrubPersonalData(v, k === '#text' ? key : k)]),
    );
  }
  if (typeof value === 'string') {
    // The key's last word names what the value is: `awb_number`, `ScanDate`, `RefNo`.
    return IDENTIFIER_WORDS.has(words(key).at(-1) ?? '') ? value : redactPersonalText(value);
  }
  return value;
}
