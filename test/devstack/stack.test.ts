/**
 * `npm start` end to end, as a user runs it: a child process that starts every part,
 * prints "Waybill is up", answers /health/ready and the Temporal UI, stops cleanly on
 * SIGINT leaving no process behind, and starts again from the same .data folder.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createDataConverter, payloadToJson } from '../../src/codec';
import { loadConfig } from '../../src/config';
import pg from 'pg';
import { eventually } from '../support/eventually';
import { freePort } from '../support/ports';

const ROOT = path.resolve(__dirname, '../..');
jest.setTimeout(240_000);

interface Ports {
  api: number;
  pg: number;
  temporal: number;
  ui: number;
  simulator: number;
  payments: number;
  metrics: number;
  apiMetrics: number;
}

function startStack(
  dataDir: string,
  ports: Ports,
): { child: ChildProcess; output: () => string; up: Promise<number> } {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WAYBILL_DATA_DIR: dataDir,
    WAYBILL_PORT: String(ports.api),
    WAYBILL_PG_PORT: String(ports.pg),
    TEMPORAL_DEV_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    COURIER_SIMULATOR_PORT: String(ports.simulator),
    PAYMENT_SIMULATOR_PORT: String(ports.payments),
    WAYBILL_WORKER_METRICS_PORT: String(ports.metrics),
    WAYBILL_METRICS_PORT: String(ports.apiMetrics),
    LOG_LEVEL: 'warn',
  };
  delete env.DATABASE_URL;
  delete env.TEMPORAL_ADDRESS;
  delete env.COURIER_SIMULATOR_URL;
  delete env.PAYMENTS_BASE_URL;
  const started = Date.now();
  // What `npm start` runs.
  const child = spawn(process.execPath, ['--import', 'tsx', 'devstack/start.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const up = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Waybill is up')) resolve(Date.now() - started);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`npm start exited (${code}) before it was up:\n${output}`)));
  });
  return { child, output: () => output, up };
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.on('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Processes whose command line mentions the data folder (Postgres and the Temporal dev server do). */
function processesUsing(dir: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(dir) && !line.includes('ps -eo'));
}

/**
 * The UI is wired to a codec endpoint (the dev server's settings name it) that opens, for a
 * page of the UI's origin and without a token of its own, the sealed input of a schedule.
 */
async function uiDecodes(ports: Ports, temporal: Client): Promise<void> {
  const settings = (await (await fetch(`http://127.0.0.1:${ports.ui}/api/v1/settings`)).json()) as {
    Codec: { Endpoint: string };
  };
  expect(settings.Codec.Endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const { raw } = await temporal.schedule.getHandle('waybill-housekeeping').describe();
  const sealed = raw.schedule!.action!.startWorkflow!.input!.payloads![0]!;
  const asJson = payloadToJson(sealed);
  expect(Buffer.from(sealed.metadata!.encoding!).toString()).toBe('binary/encrypted');
  const origin = `http://localhost:${ports.ui}`;
  const res = await fetch(`${settings.Codec.Endpoint}/decode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-namespace': 'default', origin },
    body: JSON.stringify({ payloads: [asJson] }),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('access-control-allow-origin')).toBe(origin);
  const [opened] = ((await res.json()) as { payloads: { data: string }[] }).payloads;
  expect(JSON.parse(Buffer.from(opened!.data, 'base64').toString('utf8'))).toHaveProperty('archiveAfterMs');
}

describe('npm start', () => {
  let dataDir: string;
  let ports: Ports;

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'waybill-stack-'));
    ports = {
      api: await freePort(),
      pg: await freePort(),
      temporal: await freePort(),
      ui: await freePort(),
      simulator: await freePort(),
      payments: await freePort(),
      metrics: await freePort(),
      apiMetrics: await freePort(),
    };
  });
  afterAll(() => fs.rm(dataDir, { recursive: true, force: true }));

  it('comes up, answers, stops on Ctrl-C with nothing left behind, and comes back with its data', async () => {
    const first = startStack(dataDir, ports);
    try {
      await first.up;
    } catch (err) {
      await stop(first.child);
      throw err;
    }
    const banner = first.output();
    expect(banner).toContain(`API        http://localhost:${ports.api}`);
    expect(banner).toContain(`(UI: http://localhost:${ports.ui})`);
    expect(banner).toContain(`Postgres   embedded`);
    expect(banner).toContain(`simulator on http://127.0.0.1:${ports.simulator}`);
    expect(banner).toContain(`Payments   simulator on http://127.0.0.1:${ports.payments}`);
    expect(banner).toContain(`Worker     metrics on http://127.0.0.1:${ports.metrics}/metrics`);
    expect(banner).toContain('Schedules  waybill-daily-report, waybill-housekeeping');

    const ready = await fetch(`http://127.0.0.1:${ports.api}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', temporal: 'ok' } });
    expect((await fetch(`http://127.0.0.1:${ports.ui}/`)).status).toBe(200);
    // The API's metrics are on their own listener, not on the public port.
    expect(banner).toContain(`API        metrics on http://localhost:${ports.apiMetrics}/metrics`);
    expect((await fetch(`http://127.0.0.1:${ports.api}/metrics`)).status).toBe(404);
    const apiMetrics = await fetch(`http://127.0.0.1:${ports.apiMetrics}/metrics`);
    expect(apiMetrics.status).toBe(200);
    expect(await apiMetrics.text()).toMatch(/^waybill_http_requests_total\{.*route="\/health\/ready"/m);

    // The schedules exist; a housekeeping run shows up in the worker's metrics next to
    // Temporal's own. Their input is sealed: a client needs the stack's converter to read it.
    const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    try {
      const temporal = new Client({
        connection,
        dataConverter: createDataConverter(loadConfig({}).payloads),
      });
      await uiDecodes(ports, temporal);
      const housekeeping = temporal.schedule.getHandle('waybill-housekeeping');
      expect((await housekeeping.describe()).action.workflowType).toBe('housekeepingWorkflow');
      expect((await temporal.schedule.getHandle('waybill-daily-report').describe()).state.paused).toBe(false);
      await housekeeping.trigger();
      const metrics = await eventually(
        async () => (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text(),
        (text) => /^temporal_workflow_completed\{.*workflow_type="housekeepingWorkflow"/m.test(text),
      );
      expect(metrics).toMatch(/^temporal_worker_task_slots_available\{/m);
      for (const action of ['expired', 'archived', 'scrubbed'])
        expect(metrics).toMatch(
          new RegExp(`^waybill_housekeeping_shipments\\{action="${action}".*\\} 0$`, 'm'),
        );
    } catch (err) {
      await stop(first.child);
      throw err;
    } finally {
      await connection.close();
    }

    // Something to find after the restart.
    const client = new pg.Client({
      connectionString: `postgres://waybill:waybill@127.0.0.1:${ports.pg}/waybill`,
    });
    await client.connect();
    await client.query(
      `insert into inventory_items (sku, name, on_hand) values ('KEEP-1', 'kept across restarts', 5)`,
    );
    await client.end();

    expect(await stop(first.child)).toBe(0);
    for (const port of Object.values(ports)) expect(await portOpen(port)).toBe(false);
    expect(processesUsing(dataDir)).toEqual([]);

    const second = startStack(dataDir, ports);
    try {
      const upMs = await second.up;
      // Reusing .data/: no initdb and no CLI build, only process starts and the workflow bundle.
      expect(upMs).toBeLessThan(60_000);
      const again = new pg.Client({
        connectionString: `postgres://waybill:waybill@127.0.0.1:${ports.pg}/waybill`,
      });
      await again.connect();
      const kept = await again.query(`select name from inventory_items where sku = 'KEEP-1'`);
      await again.end();
      expect(kept.rows).toEqual([{ name: 'kept across restarts' }]);
    } finally {
      expect(await stop(second.child)).toBe(0);
    }
    expect(processesUsing(dataDir)).toEqual([]);
  });

  it('stops with one line when the worker metrics port is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    let stderr = '';
    try {
      execFileSync(process.execPath, ['--import', 'tsx', 'devstack/start.ts'], {
        cwd: ROOT,
        env: { ...process.env, WAYBILL_WORKER_METRICS_PORT: String(port), WAYBILL_DATA_DIR: dataDir },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      stderr = (err as { stderr: string }).stderr;
    } finally {
      taken.close();
    }
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^waybill: the worker metrics endpoint cannot listen on 127\\.0\\.0\\.1:${port} \\(set WAYBILL_WORKER_METRICS_PORT, 0 turns it off\\): .*in use`,
        ),
      ),
    ]);
  });

  it('stops with one line naming a bad variable', () => {
    let stderr = '';
    try {
      execFileSync(process.execPath, ['--import', 'tsx', 'devstack/start.ts'], {
        cwd: ROOT,
        env: { ...process.env, WAYBILL_PORT: 'abc', WAYBILL_DATA_DIR: dataDir },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      stderr = (err as { stderr: string }).stderr;
    }
    expect(stderr.trim().split('\n')).toEqual([
      'waybill: Invalid configuration: WAYBILL_PORT must be a whole number from 1 to 65535 (got "abc")',
    ]);
  });
});
