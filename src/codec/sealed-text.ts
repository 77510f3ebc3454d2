/**
 * Short secrets Waybill keeps at rest in Postgres (a courier account's OAuth tokens), sealed by
 * the payload codec with the payload keys (./payload-codec.ts: AES-256-GCM, key ids, rotation):
 * the text is sealed as a payload's data and stored as `sealed:<key id>:<base64 of the sealed
 * data>`, so the column holds no token text, only the id of the key that opens it. Every listed
 * key opens; the active one seals. Text without the prefix was written before sealing and is
 * read as it is, so rows written earlier keep working until they are sealed on their next write.
 */
import { payloadKeysFrom } from './index';
import {
  AesGcmPayloadCodec,
  CIPHER,
  CIPHER_METADATA,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  keyIdOf,
  PayloadKeyError,
} from './payload-codec';

const PREFIX = 'sealed:';
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** The payload keys as configured: key id → base64 of 32 bytes, and the id that seals. */
export interface TextKeys {
  readonly keys: Readonly<Record<string, string>>;
  readonly activeKeyId: string;
}

export interface TextSealer {
  seal(text: string): Promise<string>;
  /** The text of a stored value; one without the prefix is returned as it is (written before sealing). */
  open(stored: string): Promise<string>;
  /** Whether a stored value is sealed with the active key (else it should be sealed again). */
  isCurrent(stored: string): boolean;
}

export function textSealer(config: TextKeys): TextSealer {
  // The payload codec's own key handling: none configured, a key of the wrong size or an
  // active id not listed is refused as it is for Temporal's payloads.
  const codec = new AesGcmPayloadCodec(payloadKeysFrom(config));
  return {
    async seal(text) {
      const [sealed] = await codec.encode([{ metadata: {}, data: utf8.encode(text) }]);
      return `${PREFIX}${keyIdOf(sealed!)}:${Buffer.from(sealed!.data!).toString('base64')}`;
    },

    async open(stored) {
      if (!stored.startsWith(PREFIX)) return stored;
      const rest = stored.slice(PREFIX.length);
      const colon = rest.indexOf(':');
      if (colon <= 0) throw new PayloadKeyError('a sealed secret without its key id');
      const [plain] = await codec.decode([
        {
          metadata: {
            encoding: utf8.encode(ENCRYPTED_ENCODING),
            [KEY_ID_METADATA]: utf8.encode(rest.slice(0, colon)),
            [CIPHER_METADATA]: utf8.encode(CIPHER),
          },
          data: new Uint8Array(Buffer.from(rest.slice(colon + 1), 'base64')),
        },
      ]);
      return fromUtf8.decode(plain!.data!);
    },

    isCurrent: (stored) => stored.startsWith(`${PREFIX}${config.activeKeyId}:`),
  };
}
