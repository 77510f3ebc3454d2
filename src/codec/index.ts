/**
 * The data converter every Temporal client and worker Waybill creates uses: the default
 * payload converter (JSON) followed by the AES-256-GCM codec (./payload-codec.ts), keyed from
 * configuration. docs/security.md says what is sealed, who may read it and how keys rotate.
 */
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { ConfigError, type Config } from '../config';
import { AesGcmPayloadCodec, isSealed, type PayloadKeys } from './payload-codec';

export {
  AesGcmPayloadCodec,
  CIPHER_METADATA,
  ENCRYPTED_ENCODING,
  isSealed,
  KEY_ID_METADATA,
  keyIdOf,
  PayloadKeyError,
  type PayloadKeys,
} from './payload-codec';

/** The configured keys; throws a {@link ConfigError} naming the variable when there are none (production, unset). */
export function payloadKeysFrom(config: Pick<Config['payloads'], 'keys' | 'activeKeyId'>): PayloadKeys {
  if (Object.keys(config.keys).length === 0) {
    throw new ConfigError([
      'WAYBILL_PAYLOAD_KEYS must be set when WAYBILL_ENV=production: every payload sent to Temporal is sealed with it (openssl rand -base64 32)',
    ]);
  }
  return {
    activeKeyId: config.activeKeyId,
    keys: new Map(
      Object.entries(config.keys).map(([id, key]) => [id, new Uint8Array(Buffer.from(key, 'base64'))]),
    ),
  };
}

/** The codec the configuration asks for. */
export function createPayloadCodec(config: Config['payloads']): AesGcmPayloadCodec {
  return new AesGcmPayloadCodec(payloadKeysFrom(config));
}

/** For `new Client({ dataConverter })` and `Worker.create({ dataConverter })`. */
export function createDataConverter(config: Config['payloads']): DataConverter {
  return { payloadCodecs: [createPayloadCodec(config)] };
}

/** A Payload in protobuf JSON, as the codec server protocol carries it: base64 metadata values and data. */
export interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export function payloadFromJson(payload: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(payload.metadata ?? {})) {
    metadata[name] = new Uint8Array(Buffer.from(value, 'base64'));
  }
  return { metadata, data: new Uint8Array(Buffer.from(payload.data ?? '', 'base64')) };
}

export function payloadToJson(payload: Payload): Required<JsonPayload> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload.metadata ?? {})) {
    metadata[name] = Buffer.from(value).toString('base64');
  }
  return { metadata, data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64') };
}

const isPayload = (value: object): value is Payload =>
  'data' in value && 'metadata' in value && (value.data === null || value.data instanceof Uint8Array);

/**
 * Opens every sealed payload in a history (or any message read straight from Temporal), in
 * place, and returns it: what the UI shows through the codec server. Payloads that are not
 * sealed are kept as they are.
 */
export async function decodeHistory<T extends object>(message: T, codec: PayloadCodec): Promise<T> {
  const walk = async (value: unknown): Promise<void> => {
    if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return;
    const fields = value as Record<string, unknown>;
    for (const [key, field] of Object.entries(fields)) {
      if (field === null || typeof field !== 'object' || field instanceof Uint8Array) continue;
      if (isPayload(field)) {
        if (isSealed(field)) fields[key] = (await codec.decode([field]))[0];
      } else {
        await walk(field);
      }
    }
  };
  await walk(message);
  return message;
}
