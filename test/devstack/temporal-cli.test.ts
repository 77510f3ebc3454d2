import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  cachedCliPath,
  goVersionAtLeast,
  resolveTemporalCli,
  TemporalCliError,
} from '../../devstack/temporal-cli';

async function fakeExecutable(file: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, '#!/bin/sh\necho fake\n', { mode: 0o755 });
}

function temporalOnPath(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v temporal'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('Temporal CLI resolution', () => {
  let dir: string;
  const log = jest.fn();
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'waybill-cli-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('uses TEMPORAL_CLI_PATH before anything else', async () => {
    const exe = path.join(dir, 'my-temporal');
    await fakeExecutable(exe);
    await fakeExecutable(cachedCliPath(dir));
    const cli = await resolveTemporalCli({ cliPath: exe, cacheDir: dir, log });
    expect(cli).toEqual({ source: 'TEMPORAL_CLI_PATH', executable: { type: 'existing-path', path: exe } });
  });

  it('refuses a TEMPORAL_CLI_PATH that is not an executable, naming it', async () => {
    const missing = path.join(dir, 'nope');
    await expect(resolveTemporalCli({ cliPath: missing, cacheDir: dir, log })).rejects.toThrow(
      new TemporalCliError(`TEMPORAL_CLI_PATH points at ${missing}, which is not an executable file`),
    );
  });

  it('finds a cached build outside the repo without building again', async () => {
    await fakeExecutable(cachedCliPath(dir));
    const cli = await resolveTemporalCli({ cliPath: null, cacheDir: dir, log });
    // A machine with `temporal` on PATH prefers it; otherwise the cache answers.
    expect(cli.source).toBe(temporalOnPath() ? 'PATH' : 'cache');
    if (cli.source === 'cache')
      expect(cli.executable).toEqual({ type: 'existing-path', path: cachedCliPath(dir) });
  });

  it('builds only with a Go new enough for the pinned CLI', () => {
    expect(goVersionAtLeast('go1.26.8')).toBe(true);
    expect(goVersionAtLeast('go1.25')).toBe(true);
    expect(goVersionAtLeast('go1.24.3')).toBe(false);
    expect(goVersionAtLeast('devel')).toBe(false);
  });
});
