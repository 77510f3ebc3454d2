import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { TypedSearchAttributes } from '@temporalio/common';
import { parse } from 'yaml';
import {
  TEMPORAL_DATABASES,
  TEMPORAL_HISTORY_SHARDS,
  TEMPORAL_SERVER_VERSION,
  TEMPORAL_SQL_PLUGIN,
} from '../devstack/temporal-server-target';
import { searchAttributeCreateCommand } from '../src/search-attributes';
import { SEARCH_ATTRIBUTES } from '../src/workflows/search-attributes';

const ROOT = path.join(__dirname, '..');

interface Service {
  image?: string;
  build?: string;
  command?: string[] | string;
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }> | string[];
  ports?: string[];
  expose?: string[];
}

describe('docker-compose.yml', () => {
  const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
  };
  const configDir = path.join(ROOT, 'src/config');
  const configSource = fs
    .readdirSync(configDir)
    .map((file) => fs.readFileSync(path.join(configDir, file), 'utf8'))
    .join('\n');

  it('runs the API, the worker, migrations and the simulator as separate services from built entry points', () => {
    const entries = Object.fromEntries(
      ['api', 'worker', 'migrate', 'simulator', 'payments'].map((name) => [
        name,
        compose.services[name]?.command,
      ]),
    );
    expect(entries).toEqual({
      api: ['node', '--max-old-space-size=256', 'dist/src/api/main.js'],
      worker: ['node', '--max-old-space-size=1280', 'dist/src/worker.js'],
      migrate: ['node', 'dist/db/migrate.js'],
      simulator: ['node', 'dist/simulators/courier/main.js'],
      payments: ['node', 'dist/simulators/payment/main.js'],
    });
    for (const file of [
      'src/api/main.ts',
      'src/worker.ts',
      'db/migrate.ts',
      'simulators/courier/main.ts',
      'simulators/payment/main.ts',
    ]) {
      expect(fs.existsSync(path.join(ROOT, file))).toBe(true);
    }
  });

  it('caps the API heap the same way in compose, the image and npm run start:api (flat-memory exports)', () => {
    const api = ['node', '--max-old-space-size=256', 'dist/src/api/main.js'];
    expect(compose.services.api?.command).toEqual(api);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['start:api']).toBe(api.join(' '));
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`CMD ${JSON.stringify(api).replace(/,/g, ', ')}`);
  });

  it('builds and runs the image on one Node LTS line that package.json’s engines allow', () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const majors = [...dockerfile.matchAll(/^FROM node:(\d+)-bookworm-slim\b/gm)].map((m) => Number(m[1]));
    expect(majors).toHaveLength(2);
    const [major] = majors as [number];
    expect(majors).toEqual([major, major]);
    // LTS lines are the even ones; the image takes the newest release of its line.
    expect(major % 2).toBe(0);
    const { engines } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
    };
    const allowed = engines.node.split('||').some((range) => {
      const m = /^\s*(\^|>=)(\d+)\.\d+\.\d+\s*$/.exec(range);
      if (!m) throw new Error(`engines.node range not understood here: ${range}`);
      return m[1] === '^' ? major === Number(m[2]) : major >= Number(m[2]);
    });
    expect(allowed).toBe(true);
  });

  it('configures Waybill only through variables src/config reads', () => {
    const waybill = ['api', 'worker', 'migrate', 'simulator', 'payments'];
    const names = new Set(waybill.flatMap((name) => Object.keys(compose.services[name]?.environment ?? {})));
    const unknown = [...names].filter((name) => !configSource.includes(`'${name}'`));
    expect(names.size).toBeGreaterThan(5);
    expect(unknown).toEqual([]);
  });

  it('runs every Waybill service with WAYBILL_ENV=production and requires the API credentials', () => {
    const waybill = ['api', 'worker', 'migrate', 'simulator', 'payments'];
    expect(waybill.map((name) => compose.services[name]?.environment?.WAYBILL_ENV)).toEqual(
      waybill.map(() => 'production'),
    );
    const api = compose.services.api?.environment ?? {};
    // `${VAR:?message}`: compose stops before starting anything when one is missing.
    for (const name of [
      'WAYBILL_JWT_SECRET',
      'WAYBILL_JWT_ISSUER',
      'WAYBILL_STAFF_JWKS',
      'WAYBILL_STAFF_JWT_ISSUER',
    ]) {
      expect({ name, value: String(api[name]) }).toEqual({
        name,
        value: expect.stringMatching(new RegExp(`^\\$\\{${name}:\\?.+\\}$`)),
      });
    }
    // The payload keys seal every Temporal payload: both processes that talk to Temporal need them.
    for (const service of ['api', 'worker']) {
      expect(String(compose.services[service]?.environment?.WAYBILL_PAYLOAD_KEYS)).toMatch(
        /^\$\{WAYBILL_PAYLOAD_KEYS:\?.+\}$/,
      );
    }
    // No literal credential anywhere: every secret comes from the environment.
    for (const service of waybill) {
      for (const [name, value] of Object.entries(compose.services[service]?.environment ?? {})) {
        if (/SECRET|JWKS|KEY_SHA256|SIGNING_KEY|PAYLOAD_KEYS/.test(name)) {
          expect({ service, name, value: String(value) }).toEqual({
            service,
            name,
            value: expect.stringMatching(/^\$\{/),
          });
        }
      }
    }
  });

  it('publishes only the API port; the API metrics listener stays inside the compose network', () => {
    const api = compose.services.api!;
    expect(api.environment?.WAYBILL_METRICS_PORT).toBe(9465);
    expect(api.ports).toEqual(['3000:3000']);
    expect(api.expose).toEqual(['9465']);
  });

  it('creates every search attribute with its type, with the command the worker names for them', () => {
    const command = String(compose.services['temporal-search-attributes']?.command).replace(/\s+/g, ' ');
    expect(command).toBe(`${searchAttributeCreateCommand({ namespace: 'default' })} || true`);
    for (const key of SEARCH_ATTRIBUTES) {
      expect(command).toContain(
        `--name ${key.name} --type ${TypedSearchAttributes.toMetadataType(key.type)}`,
      );
    }
  });

  it('runs the Temporal server the benchmarks and fault suites run as their server target', () => {
    const temporal = compose.services.temporal!;
    const version = TEMPORAL_SERVER_VERSION.replace(/^v/, '');
    expect({
      image: temporal.image,
      adminTools: compose.services['temporal-search-attributes']?.image,
      plugin: temporal.environment?.DB,
      shards: temporal.environment?.NUM_HISTORY_SHARDS,
      persistence: temporal.environment?.DBNAME,
      visibility: temporal.environment?.VISIBILITY_DBNAME,
    }).toEqual({
      image: `temporalio/auto-setup:${version}`,
      adminTools: `temporalio/admin-tools:${version}`,
      plugin: TEMPORAL_SQL_PLUGIN,
      shards: TEMPORAL_HISTORY_SHARDS,
      persistence: TEMPORAL_DATABASES.persistence,
      visibility: TEMPORAL_DATABASES.visibility,
    });
  });

  it('starts Waybill only after Postgres is healthy and migrations have run', () => {
    expect(compose.services.migrate?.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(compose.services.api?.depends_on).toMatchObject({
      migrate: { condition: 'service_completed_successfully' },
    });
    expect(compose.services.worker?.depends_on).toMatchObject({
      migrate: { condition: 'service_completed_successfully' },
      'temporal-search-attributes': { condition: 'service_completed_successfully' },
    });
  });
});

/**
 * The file against the Compose Specification's own JSON schema, taken from the
 * compose-spec/compose-go Go module (Go is already required to build the Temporal CLI).
 */
describe('docker-compose.yml against the Compose Specification schema', () => {
  const COMPOSE_GO = 'github.com/compose-spec/compose-go/v2@v2.16.2';

  it('is valid', () => {
    const go = ['go', '/usr/local/go/bin/go'].find((candidate) => {
      try {
        execFileSync(candidate, ['version'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
    expect(go).toBeDefined();
    const info = JSON.parse(
      execFileSync(go!, ['mod', 'download', '-json', COMPOSE_GO], { encoding: 'utf8', cwd: os.tmpdir() }),
    ) as { Dir: string };
    const schema = JSON.parse(fs.readFileSync(path.join(info.Dir, 'schema/compose-spec.json'), 'utf8'));
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const document = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });
    validate(document);
    expect(validate.errors ?? []).toEqual([]);
  });
});
