/**
 * The payload codec on its own: what a sealed payload keeps in the clear, key rotation, and
 * what happens to payloads it cannot open. Pure code (node:crypto), no server.
 */
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  AesGcmPayloadCodec,
  createPayloadCodec,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  keyIdOf,
  PayloadKeyError,
} from '../../src/codec';
import { ConfigError, DEV_PAYLOAD_KEY, DEV_PAYLOAD_KEY_ID, loadConfig } from '../../src/config';
import { ADDRESS } from '../support/shopper';

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const codec = (activeKeyId: string, keys: Record<string, Buffer>) =>
  new AesGcmPayloadCodec({ activeKeyId, keys: new Map(Object.entries(keys)) });

const shopper = { email: 'aisyah@example.com', ...ADDRESS };
const plain = () => defaultPayloadConverter.toPayload(shopper);
const text = (payload: Payload) =>
  Buffer.concat([
    ...Object.entries(payload.metadata ?? {}).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)]),
    Buffer.from(payload.data ?? new Uint8Array()),
  ]).toString('latin1');

describe('the payload codec', () => {
  it('seals a payload so nothing of it is readable, and names only the encoding and the key id', async () => {
    const [sealed] = await codec('a', { a: keyA }).encode([plain()]);
    expect(Buffer.from(sealed!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(sealed!.metadata![KEY_ID_METADATA]!).toString()).toBe('a');
    for (const secret of [shopper.email, shopper.name, shopper.phone, shopper.line1, 'json/plain']) {
      expect(text(sealed!)).not.toContain(secret);
    }
    const [opened] = await codec('a', { a: keyA }).decode([sealed!]);
    expect(defaultPayloadConverter.fromPayload(opened!)).toEqual(shopper);
    expect(opened!.metadata).toEqual(plain().metadata);
  });

  it('uses a fresh IV for every payload: the same value seals differently each time', async () => {
    const sealed = await codec('a', { a: keyA }).encode([plain(), plain()]);
    const ivs = sealed.map((p) => Buffer.from(p.data!).subarray(0, 12).toString('hex'));
    expect(new Set(ivs).size).toBe(2);
    expect(Buffer.from(sealed[0]!.data!).equals(Buffer.from(sealed[1]!.data!))).toBe(false);
  });

  it('after rotation seals with the new key and still opens what the old key sealed', async () => {
    const [old] = await codec('a', { a: keyA }).encode([plain()]);
    const rotated = codec('b', { a: keyA, b: keyB });
    const [fresh] = await rotated.encode([plain()]);
    expect(keyIdOf(fresh!)).toBe('b');
    const opened = await rotated.decode([old!, fresh!]);
    expect(opened.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([shopper, shopper]);
  });

  it('refuses a payload sealed with a key id it does not hold, naming the id', async () => {
    const [sealed] = await codec('b', { b: keyB }).encode([plain()]);
    await expect(codec('a', { a: keyA }).decode([sealed!])).rejects.toThrow(
      new PayloadKeyError(
        'payload sealed with key id "b", which this process does not hold (it holds a): add that key to WAYBILL_PAYLOAD_KEYS',
      ),
    );
  });

  it('refuses an altered payload and one relabelled with another key id', async () => {
    const [sealed] = await codec('a', { a: keyA }).encode([plain()]);
    const flipped = Buffer.from(sealed!.data!);
    flipped[20] = flipped[20]! ^ 1;
    await expect(codec('a', { a: keyA }).decode([{ ...sealed!, data: flipped }])).rejects.toThrow(
      /does not open with that key/,
    );
    // Key b listed under a's id cannot open what a sealed, and a's ciphertext named as b fails too.
    await expect(codec('a', { a: keyB }).decode([sealed!])).rejects.toThrow(/does not open/);
    const relabelled = {
      ...sealed!,
      metadata: { ...sealed!.metadata, [KEY_ID_METADATA]: Buffer.from('b') },
    };
    await expect(codec('a', { a: keyA, b: keyA }).decode([relabelled])).rejects.toThrow(/does not open/);
  });

  it('passes payloads that were never sealed through unchanged (histories from before the codec)', async () => {
    const unsealed = plain();
    expect(await codec('a', { a: keyA }).decode([unsealed])).toEqual([unsealed]);
  });

  it('round-trips payloads with no data and binary data', async () => {
    const c = codec('a', { a: keyA });
    const empty: Payload = { metadata: { encoding: Buffer.from('binary/null') } };
    const binary = defaultPayloadConverter.toPayload(new Uint8Array([0, 1, 2, 255]));
    const opened = await c.decode(await c.encode([empty, binary]));
    expect(Buffer.from(opened[0]!.data!).length).toBe(0);
    expect(Buffer.from(opened[0]!.metadata!.encoding!).toString()).toBe('binary/null');
    expect(defaultPayloadConverter.fromPayload(opened[1]!)).toEqual(new Uint8Array([0, 1, 2, 255]));
  });
});

describe('payload keys from configuration', () => {
  const b64 = (key: Buffer) => key.toString('base64');

  it('uses the published development key by default, and seals with it', async () => {
    const config = loadConfig({});
    expect(config.payloads).toMatchObject({
      keys: { [DEV_PAYLOAD_KEY_ID]: DEV_PAYLOAD_KEY },
      activeKeyId: DEV_PAYLOAD_KEY_ID,
      keysAreDefault: true,
    });
    const [sealed] = await createPayloadCodec(config.payloads).encode([plain()]);
    expect(keyIdOf(sealed!)).toBe(DEV_PAYLOAD_KEY_ID);
  });

  it('reads several keys and the active one', () => {
    const config = loadConfig({
      WAYBILL_PAYLOAD_KEYS: `2026-11:${b64(keyA)},2026-12:${b64(keyB)}`,
      WAYBILL_PAYLOAD_KEY_ACTIVE: '2026-12',
    });
    expect(config.payloads).toMatchObject({
      keys: { '2026-11': b64(keyA), '2026-12': b64(keyB) },
      activeKeyId: '2026-12',
      keysAreDefault: false,
    });
  });

  it('names each problem: short keys, a missing or unknown active key, duplicates', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ WAYBILL_PAYLOAD_KEYS: `a:${randomBytes(16).toString('base64')}` })).toEqual([
      'WAYBILL_PAYLOAD_KEYS: key "a" must be 32 bytes in base64 (openssl rand -base64 32)',
    ]);
    expect(problems({ WAYBILL_PAYLOAD_KEYS: `a:${b64(keyA)},b:${b64(keyB)}` })).toEqual([
      'WAYBILL_PAYLOAD_KEY_ACTIVE must name the key that seals new payloads when WAYBILL_PAYLOAD_KEYS lists several (a, b)',
    ]);
    expect(problems({ WAYBILL_PAYLOAD_KEYS: `a:${b64(keyA)}`, WAYBILL_PAYLOAD_KEY_ACTIVE: 'z' })).toEqual([
      'WAYBILL_PAYLOAD_KEY_ACTIVE "z" is not a key id of WAYBILL_PAYLOAD_KEYS (a)',
    ]);
    expect(problems({ WAYBILL_PAYLOAD_KEYS: 'no-key-here' })).toEqual([
      'WAYBILL_PAYLOAD_KEYS must be comma-separated id:base64key pairs (ids: letters, digits, . _ -)',
    ]);
    expect(problems({ WAYBILL_CODEC_CORS_ORIGINS: '*' })).toEqual([
      'WAYBILL_CODEC_CORS_ORIGINS must be comma-separated origins such as https://temporal.example.com (got "*")',
    ]);
  });

  it('production refuses the published development key, and a process that talks to Temporal stops without keys', () => {
    expect(() =>
      loadConfig({
        WAYBILL_ENV: 'production',
        WAYBILL_PAYLOAD_KEYS: `old:${b64(keyA)},dev:${DEV_PAYLOAD_KEY}`,
        WAYBILL_PAYLOAD_KEY_ACTIVE: 'old',
      }),
    ).toThrow(
      'WAYBILL_PAYLOAD_KEYS is the published development payload key: set your own (WAYBILL_ENV=production)',
    );
    const production = loadConfig({ WAYBILL_ENV: 'production' });
    expect(production.payloads.keys).toEqual({});
    expect(() => createPayloadCodec(production.payloads)).toThrow(ConfigError);
    expect(() => createPayloadCodec(production.payloads)).toThrow(
      /WAYBILL_PAYLOAD_KEYS must be set when WAYBILL_ENV=production/,
    );
  });
});
