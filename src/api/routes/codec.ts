/**
 * The codec server: Temporal's remote codec protocol on the API, so the Temporal UI and
 * `temporal workflow show --codec-endpoint` can show the sealed payloads of a history
 * (src/codec) to staff who may read them. `POST /codec/decode` and `POST /codec/encode` take
 * and answer `{ payloads: [{ metadata: { name: base64 }, data: base64 }] }` (Payloads in
 * protobuf JSON, as the UI and CLI send them).
 *
 * Who: a staff bearer token (or admin API key) whose role holds `payloads:decode` (ops,
 * admin); support, customers and guests get 401/403 and so only ever see ciphertext. Browsers
 * may call it from the origins in WAYBILL_CODEC_CORS_ORIGINS (the Temporal UI's); a request
 * from any other origin is refused. Not part of the shop's API contract, so not in the
 * OpenAPI document (docs/security.md describes it).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Payload } from '@temporalio/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { createPayloadCodec, PayloadKeyError, payloadFromJson, payloadToJson } from '../../codec';
import { Permission } from '../access';
import { actorOf, requireStaff } from '../auth';
import { ApiError } from '../errors';
import type { ApiDeps } from '../app';

const Base64 = Type.String({ pattern: '^[A-Za-z0-9+/_-]*={0,2}$', maxLength: 4 * 1024 * 1024 });
const JsonPayload = Type.Object({
  metadata: Type.Optional(Type.Record(Type.String({ maxLength: 256 }), Base64)),
  data: Type.Optional(Base64),
});
const JsonPayloads = Type.Object({ payloads: Type.Array(JsonPayload, { maxItems: 10_000 }) });

/** A history's payloads can be large; the API's 64 KiB limit is for shop requests. */
const BODY_LIMIT_BYTES = 8 * 1024 * 1024;

export const codecRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const codec = createPayloadCodec(deps.config.payloads);
  const origins = new Set(deps.config.payloads.codecCorsOrigins);

  /** A browser's origin we do not serve: refused before credentials are even looked at. */
  const allowedOrigin = async (request: FastifyRequest): Promise<void> => {
    const { origin } = request.headers;
    if (origin !== undefined && !origins.has(origin)) {
      throw new ApiError(
        403,
        'ORIGIN_NOT_ALLOWED',
        `the codec server does not answer pages from ${origin}; add that origin to WAYBILL_CODEC_CORS_ORIGINS`,
      );
    }
  };

  // Every answer (errors too) tells an allowed browser it may read it; credentials included,
  // so the origin is named exactly, never `*`.
  app.addHook('onSend', async (request, reply: FastifyReply, payload) => {
    const { origin } = request.headers;
    if (origin !== undefined && origins.has(origin)) {
      void reply.header('access-control-allow-origin', origin);
      void reply.header('access-control-allow-credentials', 'true');
      void reply.header('access-control-expose-headers', 'x-request-id');
    }
    void reply.header('vary', 'Origin');
    return payload;
  });

  const rateLimit = { max: deps.config.payloads.codecRateLimitPerMinute, timeWindow: 60_000 };

  app.options(
    '/codec/:operation',
    {
      onRequest: allowedOrigin,
      config: { rateLimit },
      schema: {
        hide: true,
        params: Type.Object({ operation: Type.Union([Type.Literal('encode'), Type.Literal('decode')]) }),
      },
    },
    async (_request, reply) =>
      reply
        .code(204)
        .header('access-control-allow-methods', 'POST')
        .header('access-control-allow-headers', 'authorization, content-type, x-namespace')
        .header('access-control-max-age', '600')
        .send(),
  );

  for (const operation of ['decode', 'encode'] as const) {
    app.post(
      `/codec/${operation}`,
      {
        onRequest: [allowedOrigin, requireStaff(Permission.DECODE_PAYLOADS)],
        bodyLimit: BODY_LIMIT_BYTES,
        config: { rateLimit },
        schema: { hide: true, body: JsonPayloads, response: { 200: JsonPayloads } },
      },
      async (request) => {
        const payloads = request.body.payloads.map(payloadFromJson);
        let converted: Payload[];
        try {
          converted = operation === 'decode' ? await codec.decode(payloads) : await codec.encode(payloads);
        } catch (err) {
          if (err instanceof PayloadKeyError) throw new ApiError(400, 'PAYLOAD_NOT_DECODABLE', err.message);
          throw err;
        }
        // Who opened personal data, and how much: the accountability trail of the codec server.
        if (operation === 'decode') {
          request.log.info({ actor: actorOf(request.principal), payloads: payloads.length }, 'codec decode');
        }
        return { payloads: converted.map(payloadToJson) };
      },
    );
  }
};
