/**
 * The contract as Spectral's OWASP API security ruleset reads it: the document the real
 * app serves has no error-level finding, its only warnings are the free-text fields
 * .spectral.yaml names with a reason, and the rate-limit headers it declares are the ones
 * the API really sends.
 */
import { countFindings, freeTextFields, lintOpenApi } from '../../scripts/openapi-lint';
import { useStack } from '../support/stack';

/** The property or parameter a finding is about, e.g. `…/properties/city/anyOf/0` → city. */
function fieldOf(where: string, doc: Record<string, unknown>): string {
  const segments = where
    .split('/')
    .slice(1)
    .map((s) => decodeURIComponent(s.replace(/~1/g, '/').replace(/~0/g, '~')));
  const parameter = where.match(/^(.*\/parameters\/\d+)\/schema$/);
  if (parameter) {
    let node: unknown = doc;
    for (const s of parameter[1]!.split('/').slice(1)) {
      node = (node as Record<string, unknown>)[decodeURIComponent(s.replace(/~1/g, '/').replace(/~0/g, '~'))];
    }
    return (node as { name: string }).name;
  }
  const named = segments.filter((s, i) => segments[i - 1] === 'properties');
  return named.at(-1) ?? where;
}

describe('the served OpenAPI document under the OWASP ruleset', () => {
  const stack = useStack({
    worker: false,
    payments: false,
    api: { env: { WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '2' } },
  });
  let doc: Record<string, unknown>;

  beforeAll(async () => {
    doc = (await stack.api.app.inject({ url: '/openapi.json' })).json();
  });

  it('has no errors, and warns only about the free-text fields .spectral.yaml justifies', async () => {
    const findings = await lintOpenApi(doc);
    const { bySeverity } = countFindings(findings);
    expect(findings.filter((f) => f.severity === 'error')).toEqual([]);

    const allowed = freeTextFields();
    const unjustified = findings
      .filter((f) => f.severity !== 'error')
      .filter((f) => f.rule !== 'owasp:api4:2023-string-restricted' || !(fieldOf(f.where, doc) in allowed));
    expect(unjustified).toEqual([]);
    // Each reason is a sentence, and every listed field still occurs (no stale entries).
    const warned = new Set(findings.map((f) => fieldOf(f.where, doc)));
    for (const [field, reason] of Object.entries(allowed)) {
      expect({ field, reason: reason.length > 10, stillWarned: warned.has(field) }).toEqual({
        field,
        reason: true,
        stillWarned: true,
      });
    }
    expect(bySeverity.warn).toBeGreaterThan(0);
  });

  it('declares on every operation who may call it and every error it answers with, in our shape', () => {
    const paths = doc.paths as Record<
      string,
      Record<string, { security?: unknown[]; responses: Record<string, { content?: object }> }>
    >;
    const components = (doc.components as { schemas: Record<string, unknown> }).schemas;
    /** `{ error: { code, message } }`, inline or by reference. */
    const isErrorShape = (content: object | undefined) => {
      const schema = (content as Record<string, { schema: { $ref?: string } }> | undefined)?.[
        'application/json'
      ]?.schema;
      const resolved = (schema?.$ref ? components[schema.$ref.split('/').pop()!] : schema) as
        { properties?: { error?: { required?: string[] } } } | undefined;
      return JSON.stringify(resolved?.properties?.error?.required?.sort()) === '["code","message"]';
    };
    for (const [path, operations] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(operations)) {
        const route = `${method.toUpperCase()} ${path}`;
        expect({ route, security: (op.security ?? []).length > 0 }).toEqual({ route, security: true });
        const errors = Object.keys(op.responses).filter((status) => /^[45]/.test(status));
        const shapes = errors.map((status) => ({
          status,
          schema: isErrorShape(op.responses[status]!.content),
        }));
        expect({ route, shapes }).toEqual({
          route,
          shapes: errors.map((status) => ({
            status,
            // The readiness check answers 503 with its own report of what is down.
            schema: !(path === '/health/ready' && status === '503'),
          })),
        });
        expect({ route, has400: '400' in op.responses, has500: '500' in op.responses }).toEqual({
          route,
          has400: true,
          has500: true,
        });
      }
    }
  });

  it('declares the rate-limit headers the API sends, and sends none on health checks', async () => {
    const paths = doc.paths as Record<
      string,
      Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>
    >;
    const declared = (path: string, method: string, status: string) =>
      Object.keys(paths[path]![method]!.responses[status]!.headers ?? {}).sort();

    const notFound = await stack.api.app.inject({ url: '/v1/tracking/NOPE12345' });
    expect(notFound.statusCode).toBe(404);
    expect(declared('/v1/tracking/{trackingNumber}', 'get', '404')).toEqual([
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
    ]);
    for (const name of declared('/v1/tracking/{trackingNumber}', 'get', '404')) {
      expect({ name, sent: notFound.headers[name.toLowerCase()] }).toEqual({
        name,
        sent: expect.stringMatching(/^\d+$/),
      });
    }

    // The guest lookup allows 2 a minute here: the third answers 429 with Retry-After.
    const lookup = () =>
      stack.api.app.inject({
        method: 'POST',
        url: '/v1/tracking/lookup',
        payload: { orderNumber: 'WB-1', postcode: '40000' },
      });
    const answers = [await lookup(), await lookup(), await lookup()];
    expect(answers.map((a) => a.statusCode)).toEqual([404, 404, 429]);
    const limited = answers[2]!;
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    expect(declared('/v1/tracking/lookup', 'post', '429')).toEqual([
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
      'Retry-After',
    ]);
    expect({
      limit: limited.headers['ratelimit-limit'],
      remaining: limited.headers['ratelimit-remaining'],
      retryAfter: Number(limited.headers['retry-after']),
    }).toEqual({ limit: '2', remaining: '0', retryAfter: expect.any(Number) });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);

    const health = await stack.api.app.inject({ url: '/health/live' });
    expect(health.headers['ratelimit-limit']).toBeUndefined();
    expect(declared('/health/live', 'get', '200')).toEqual([]);
  });
});
