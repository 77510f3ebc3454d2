/**
 * The payload codec: every payload a Waybill client or worker sends to Temporal (workflow and
 * activity inputs and results, signals, updates, queries, memos, failures' details, summaries)
 * is sealed with AES-256-GCM before it leaves the process, so Temporal's history holds
 * ciphertext only. Codecs run outside the workflow sandbox (in the worker and the client), so
 * workflow code never sees this module.
 *
 * A sealed payload keeps nothing of the original in the clear: its metadata says only how it
 * was sealed and with which key, its data is `IV (12 bytes) · ciphertext · tag (16 bytes)`.
 * The plaintext is the original payload, framed as `header length (uint32 BE) · header JSON
 * (the original metadata, base64 values) · data`. The key id is bound into the tag as
 * additional data, so a payload relabelled with another key id fails to open.
 *
 * Rotation: one active key seals; every listed key opens. Payloads sealed by an older key keep
 * decoding as long as that key is listed; a key id this process does not hold fails with an
 * error that names it. Payloads that were never sealed (written before the codec, or by a
 * client without it) pass through decode unchanged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** `metadata.encoding` of a sealed payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** `metadata['encryption-key-id']`: which key sealed it. */
export const KEY_ID_METADATA = 'encryption-key-id';
/** `metadata['encryption-cipher']`: the cipher and framing, so a future format can be told apart. */
export const CIPHER_METADATA = 'encryption-cipher';
export const CIPHER = 'AES-256-GCM/waybill-v1';

const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

/** The keys a codec holds: the active one seals, all open. */
export interface PayloadKeys {
  readonly activeKeyId: string;
  /** Key id → the 32-byte key. */
  readonly keys: ReadonlyMap<string, Uint8Array>;
}

/** A payload sealed with a key id this process does not hold (or in a format it does not read). */
export class PayloadKeyError extends Error {
  override name = 'PayloadKeyError';
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function additionalData(keyId: string): Buffer {
  return Buffer.from(`waybill-payload:${keyId}`, 'utf8');
}

function frame(payload: Payload): Buffer {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload.metadata ?? {})) {
    metadata[name] = Buffer.from(value).toString('base64');
  }
  const header = Buffer.from(JSON.stringify(metadata), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.length);
  return Buffer.concat([length, header, Buffer.from(payload.data ?? new Uint8Array())]);
}

function unframe(plain: Buffer): Payload {
  const headerLength = plain.readUInt32BE(0);
  const header = JSON.parse(plain.subarray(4, 4 + headerLength).toString('utf8')) as Record<string, string>;
  const metadata: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(header)) {
    metadata[name] = new Uint8Array(Buffer.from(value, 'base64'));
  }
  return { metadata, data: new Uint8Array(plain.subarray(4 + headerLength)) };
}

/** True when the payload was sealed by a Waybill codec (whichever key). */
export function isSealed(payload: Payload): boolean {
  const encoding = payload.metadata?.encoding;
  return encoding !== undefined && encoding !== null && fromUtf8.decode(encoding) === ENCRYPTED_ENCODING;
}

/** The key id a sealed payload names, or null for a payload that is not sealed. */
export function keyIdOf(payload: Payload): string | null {
  if (!isSealed(payload)) return null;
  const id = payload.metadata?.[KEY_ID_METADATA];
  return id ? fromUtf8.decode(id) : '';
}

export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly keys: ReadonlyMap<string, Buffer>;
  private readonly activeKeyId: string;

  constructor(keys: PayloadKeys) {
    const held = new Map<string, Buffer>();
    for (const [id, key] of keys.keys) {
      if (key.length !== KEY_BYTES) throw new Error(`payload key "${id}" must be ${KEY_BYTES} bytes`);
      held.set(id, Buffer.from(key));
    }
    if (!held.has(keys.activeKeyId)) {
      throw new Error(`the active payload key "${keys.activeKeyId}" is not among the listed keys`);
    }
    this.keys = held;
    this.activeKeyId = keys.activeKeyId;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.seal(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.open(payload));
  }

  private seal(payload: Payload): Payload {
    const keyId = this.activeKeyId;
    // A fresh random IV per payload: GCM must never see one (key, IV) pair twice.
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(keyId)!, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(keyId));
    const sealed = Buffer.concat([iv, cipher.update(frame(payload)), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: {
        encoding: utf8.encode(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: utf8.encode(keyId),
        [CIPHER_METADATA]: utf8.encode(CIPHER),
      },
      data: new Uint8Array(sealed),
    };
  }

  private open(payload: Payload): Payload {
    const keyId = keyIdOf(payload);
    if (keyId === null) return payload;
    const cipherName = payload.metadata?.[CIPHER_METADATA];
    if (cipherName && fromUtf8.decode(cipherName) !== CIPHER) {
      throw new PayloadKeyError(`payload sealed with an unknown cipher "${fromUtf8.decode(cipherName)}"`);
    }
    const key = this.keys.get(keyId);
    if (!key) {
      throw new PayloadKeyError(
        `payload sealed with key id "${keyId}", which this process does not hold (it holds ${[...this.keys.keys()].join(', ')}): add that key to WAYBILL_PAYLOAD_KEYS`,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES + 4) {
      throw new PayloadKeyError(`payload sealed with key id "${keyId}" is too short to be ciphertext`);
    }
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(additionalData(keyId));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new PayloadKeyError(
        `payload sealed with key id "${keyId}" does not open with that key: it was altered, or the key listed under that id is not the one that sealed it`,
      );
    }
    return unframe(plain);
  }
}
