/**
 * The codec server (POST /codec/decode, /codec/encode): Temporal's remote codec protocol as the
 * Temporal UI and `temporal workflow show --codec-endpoint` call it, on the real API. Payloads
 * go in and out as protobuf JSON (base64 metadata values and data).
 */
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { StaffRole } from '../../src/api/access';
import {
  AesGcmPayloadCodec,
  createPayloadCodec,
  ENCRYPTED_ENCODING,
  payloadFromJson,
  payloadToJson,
} from '../../src/codec';
import type { TestApi } from '../support/api';
import { testConfig } from '../support/env';
import { ADDRESS } from '../support/shopper';
import { useStack } from '../support/stack';

const UI_ORIGIN = 'http://localhost:8233';

type JsonPayload = ReturnType<typeof toJson>;
const toJson = payloadToJson;
const fromJson = payloadFromJson;

const recipient = { email: 'aisyah@example.com', ...ADDRESS };

describe('the codec server', () => {
  const stack = useStack({ worker: false, payments: false, api: {} });
  let api: TestApi;
  /** What a worker with the same configuration writes into a history. */
  let sealed: JsonPayload;

  beforeAll(async () => {
    api = stack.api;
    const [payload] = await createPayloadCodec(api.config.payloads).encode([
      defaultPayloadConverter.toPayload(recipient),
    ]);
    sealed = toJson(payload!);
  });

  const codecCall =
    (operation: 'decode' | 'encode') =>
    (headers: Record<string, string>, payloads: JsonPayload[] = [sealed], target = api) =>
      target.app.inject({
        method: 'POST',
        url: `/codec/${operation}`,
        headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers },
        payload: { payloads },
      });
  const decode = codecCall('decode');
  const encode = codecCall('encode');

  it.each([
    ['ops', () => api.staff(StaffRole.OPS)],
    ['admin', () => api.staff(StaffRole.ADMIN)],
    ['the admin API key', () => api.adminKey()],
  ])('decodes for %s: the UI sees what the workflow saw', async (_who, credential) => {
    const res = await decode(credential());
    expect(res.statusCode).toBe(200);
    const [opened] = (res.json() as { payloads: JsonPayload[] }).payloads;
    expect(defaultPayloadConverter.fromPayload(fromJson(opened!))).toEqual(recipient);
    expect(Buffer.from(opened!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
  });

  it.each([
    [
      'support',
      () => api.staff(StaffRole.SUPPORT),
      403,
      'role support lacks payloads:decode; it takes ops or admin',
    ],
    ['a customer', () => api.customer('cus_1'), 403, 'this route is for staff'],
    ['a guest', () => ({}), 401, 'send a staff bearer token or an x-api-key'],
    ['a forged token', () => ({ authorization: 'Bearer a.b.c' }), 401, 'the bearer token is not valid'],
  ])('refuses %s, who keeps seeing ciphertext', async (_who, credential, status, message) => {
    const res = await decode(credential());
    expect(res.statusCode).toBe(status);
    expect(res.json().error.message).toBe(message);
    expect(res.body).not.toContain(recipient.name);
  });

  it('encodes for ops: what the UI sends (a signal typed in the UI) is sealed before it reaches Temporal', async () => {
    const plain = toJson(defaultPayloadConverter.toPayload({ reason: 'customer phoned' }));
    const res = await encode(api.staff(StaffRole.OPS), [plain]);
    expect(res.statusCode).toBe(200);
    const [encoded] = (res.json() as { payloads: JsonPayload[] }).payloads;
    expect(Buffer.from(encoded!.metadata.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(encoded!.data, 'base64').toString('latin1')).not.toContain('customer phoned');
    const back = await decode(api.staff(StaffRole.OPS), [encoded!]);
    expect(back.json().payloads).toEqual([plain]);
    expect((await encode(api.staff(StaffRole.SUPPORT), [plain])).statusCode).toBe(403);
  });

  it('passes payloads that were never sealed through unchanged', async () => {
    const plain = toJson(defaultPayloadConverter.toPayload('WB-1001'));
    const res = await decode(api.staff(StaffRole.OPS), [plain, sealed]);
    expect(res.statusCode).toBe(200);
    expect(res.json().payloads[0]).toEqual(plain);
  });

  it('after rotation still decodes what the old key sealed; a key it does not hold is a clear 400', async () => {
    const b = randomBytes(32).toString('base64');
    const old = api.config.payloads;
    const rotated = await stack.anotherApi({
      env: {
        WAYBILL_PAYLOAD_KEYS: `${old.activeKeyId}:${old.keys[old.activeKeyId]},next:${b}`,
        WAYBILL_PAYLOAD_KEY_ACTIVE: 'next',
      },
    });
    const onlyNew = await stack.anotherApi({ env: { WAYBILL_PAYLOAD_KEYS: `next:${b}` } });
    const res = await decode(rotated.staff(StaffRole.OPS), [sealed], rotated);
    expect(res.statusCode).toBe(200);
    expect(defaultPayloadConverter.fromPayload(fromJson(res.json().payloads[0]))).toEqual(recipient);

    const refused = await decode(onlyNew.staff(StaffRole.OPS), [sealed], onlyNew);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error).toEqual({
      code: 'PAYLOAD_NOT_DECODABLE',
      message: `payload sealed with key id "${old.activeKeyId}", which this process does not hold (it holds next): add that key to WAYBILL_PAYLOAD_KEYS`,
    });
  });

  it('a payload altered in transit or sealed by another key under the same id is a 400, not garbage', async () => {
    const stranger = new AesGcmPayloadCodec({
      activeKeyId: api.config.payloads.activeKeyId,
      keys: new Map([[api.config.payloads.activeKeyId, randomBytes(32)]]),
    });
    const [foreign] = await stranger.encode([defaultPayloadConverter.toPayload(recipient)]);
    const res = await decode(api.staff(StaffRole.OPS), [toJson(foreign!)]);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('PAYLOAD_NOT_DECODABLE');
    const bad = await decode(api.staff(StaffRole.OPS), [{ metadata: {}, data: 'not base64!' }]);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('VALIDATION_FAILED');
  });

  describe('from a browser (the Temporal UI)', () => {
    it('answers the preflight of the UI origin, credentials and the Authorization header allowed', async () => {
      const res = await api.app.inject({
        method: 'OPTIONS',
        url: '/codec/decode',
        headers: {
          origin: UI_ORIGIN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type,x-namespace',
        },
      });
      expect(res.statusCode).toBe(204);
      expect(res.headers).toMatchObject({
        'access-control-allow-origin': UI_ORIGIN,
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'authorization, content-type, x-namespace',
      });
    });

    it('lets the UI read both the decoded answer and a refusal', async () => {
      const ok = await decode({ origin: UI_ORIGIN, ...api.staff(StaffRole.OPS) });
      expect(ok.statusCode).toBe(200);
      expect(ok.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
      const refused = await decode({ origin: UI_ORIGIN });
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
    });

    it('refuses any other origin, even with a valid staff token', async () => {
      const preflight = await api.app.inject({
        method: 'OPTIONS',
        url: '/codec/decode',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      expect(preflight.statusCode).toBe(403);
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      const res = await decode({ origin: 'https://evil.example', ...api.staff(StaffRole.ADMIN) });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('ORIGIN_NOT_ALLOWED');
      expect(res.body).not.toContain(recipient.name);
    });

    it('serves the origins WAYBILL_CODEC_CORS_ORIGINS names instead of the default', async () => {
      const config = testConfig({ WAYBILL_CODEC_CORS_ORIGINS: 'https://temporal.example.com' });
      expect(config.payloads.codecCorsOrigins).toEqual(['https://temporal.example.com']);
      const other = await stack.anotherApi({
        env: { WAYBILL_CODEC_CORS_ORIGINS: 'https://temporal.example.com' },
      });
      const allowed = await decode(
        { origin: 'https://temporal.example.com', ...other.staff(StaffRole.OPS) },
        [sealed],
        other,
      );
      expect(allowed.statusCode).toBe(200);
      const local = await decode({ origin: UI_ORIGIN, ...other.staff(StaffRole.OPS) }, [sealed], other);
      expect(local.statusCode).toBe(403);
    });
  });
});
