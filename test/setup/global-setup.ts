/**
 * Starts the real servers every test talks to, once per `npm test`:
 * - an embedded PostgreSQL in a temporary folder, with a migrated template database
 *   (`freshDatabase()` in test/support/db.ts clones it in milliseconds);
 * - a Temporal dev server from the resolved CLI (in memory, custom search attributes
 *   registered), unless TEMPORAL_ADDRESS points at one already running.
 * What tests need is passed on through environment variables (Jest workers inherit them).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createDb } from '../../db/client';
import { migrateToLatest } from '../../db/migrator';
import { loadConfig } from '../../src/config';
import { startEmbeddedPostgres, type RunningPostgres } from '../../devstack/embedded-postgres';
import { resolveTemporalCli } from '../../devstack/temporal-cli';
import { startTemporalDevServer, type RunningDevServer } from '../../devstack/temporal-server';
import { freePort } from '../support/ports';
import { workflowBundlerOptions } from '../../src/workflow-bundle';

export const TEMPLATE_DB = 'waybill_template';

interface TestServers {
  postgres: RunningPostgres;
  temporal: RunningDevServer | null;
  tmpDir: string;
}

declare global {
  var __WAYBILL_TEST_SERVERS__: TestServers | undefined;
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const config = loadConfig();
  const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'waybill-test-'));

  const pgPort = await freePort();
  const postgres = await startEmbeddedPostgres({
    dir: path.join(tmpDir, 'pg'),
    port: pgPort,
    user: 'waybill',
    password: 'waybill',
    database: TEMPLATE_DB,
  });
  const templateDb = createDb({ url: postgres.url, poolMax: 1 });
  try {
    await migrateToLatest(templateDb);
  } finally {
    await templateDb.destroy();
  }

  let temporal: RunningDevServer | null = null;
  if (!config.temporal.external) {
    const cli = await resolveTemporalCli({
      cliPath: config.temporal.cliPath,
      cacheDir: config.paths.cacheDir,
      log: (line) => process.stderr.write(`[test setup] ${line}\n`),
    });
    temporal = await startTemporalDevServer({
      executable: cli.executable,
      namespace: config.temporal.namespace,
      dynamicConfig: {
        // Lets the continue-as-new test reach the server's suggestion in a few polls.
        'limit.historyCount.suggestContinueAsNew': 60,
      },
    });
  }

  // Bundle the workflow code once for every test worker (bundling takes seconds).
  const { code } = await bundleWorkflowCode({
    // As the worker bundles by default (WAYBILL_WORKER_SHARED_WORKFLOW_MODULES on).
    ...workflowBundlerOptions(true),
    logger: {
      trace() {},
      debug() {},
      info() {},
      warn() {},
      error: (m: string) => process.stderr.write(`${m}\n`),
      log() {},
    },
  });
  const bundlePath = path.join(tmpDir, 'workflow-bundle.js');
  await fs.writeFile(bundlePath, code);
  process.env.WAYBILL_TEST_WORKFLOW_BUNDLE = bundlePath;

  process.env.WAYBILL_TEST_PG_URL = postgres.url;
  process.env.WAYBILL_TEST_PG_PORT = String(pgPort);
  process.env.WAYBILL_TEST_TEMPLATE_DB = TEMPLATE_DB;
  process.env.WAYBILL_TEST_TEMPORAL_ADDRESS = temporal?.address ?? config.temporal.address;
  globalThis.__WAYBILL_TEST_SERVERS__ = { postgres, temporal, tmpDir };
  process.stderr.write(
    `\n[test setup] Postgres on 127.0.0.1:${pgPort}, Temporal on ${process.env.WAYBILL_TEST_TEMPORAL_ADDRESS} (${Date.now() - started} ms)\n`,
  );
}
