/**
 * The stack `npm run demo` starts for itself: `npm start` (devstack/start.ts) as a child
 * process with the demo's settings, its own data folder and its output in a log file there.
 * The child leads its own process group, so a Ctrl-C in the terminal reaches only the demo,
 * which then stops the stack in order (SIGINT, and waits for it to exit).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { StartupError } from '../../src/main-helpers';

/** Marks a folder as the demo's own: only such a folder is ever emptied by the demo. */
export const DEMO_MARKER = '.waybill-demo';

/** True when something answers `GET /health/live` on this base URL within `timeoutMs`. */
export async function apiAnswers(baseUrl: string, timeoutMs = 1_500): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl}/health/live`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Empties the demo's data folder so every run starts from nothing (no orders, stock or
 * courier budget left over from the last run). Refuses a folder it did not make.
 */
export async function resetDataDir(dir: string): Promise<void> {
  const entries = await fsp.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (entries !== null && entries.length > 0 && !entries.includes(DEMO_MARKER)) {
    throw new StartupError(
      `${dir} exists and was not made by the demo, so the demo will not empty it; move it away or set WAYBILL_DATA_DIR`,
    );
  }
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(
    path.join(dir, DEMO_MARKER),
    'Made by `npm run demo`; emptied at the start of every demo run.\n',
  );
}

export interface DemoStack {
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or null after a signal) when the stack exits. */
  exited: Promise<number | null>;
  /** SIGINT, then waits; a stack that hangs is asked again, then killed with its process group. */
  stop(): Promise<number | null>;
  /** Lets the stack outlive the demo (`--keep`). */
  detach(): void;
}

async function lastLines(file: string, count: number): Promise<string> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

/**
 * Starts the stack and waits until `GET <apiUrl>/health/ready` answers 200. A stack that
 * exits first, or is not ready within `timeoutMs`, fails with the end of its log.
 */
export async function startDemoStack(opts: {
  root: string;
  env: Record<string, string>;
  dataDir: string;
  apiUrl: string;
  timeoutMs: number;
  onWaiting?: (elapsedMs: number) => void;
}): Promise<DemoStack> {
  const logFile = path.join(opts.dataDir, 'stack.log');
  const out = fs.openSync(logFile, 'a');
  // What `npm start` runs.
  const child = spawn(process.execPath, ['--import', 'tsx', 'devstack/start.ts'], {
    cwd: opts.root,
    env: opts.env,
    stdio: ['ignore', out, out],
    detached: true,
  });
  fs.closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new StartupError('could not start the stack (node did not spawn)');
  await fsp.writeFile(path.join(opts.dataDir, 'stack.pid'), `${pid}\n`);

  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
  });
  const waitExit = (ms: number) =>
    Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
    ]);

  const stack: DemoStack = {
    pid,
    logFile,
    exited,
    async stop() {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGINT');
      if (await waitExit(60_000)) return exitCode ?? null;
      // start.ts takes a second SIGINT, a moment after the first, as "exit now".
      child.kill('SIGINT');
      if (await waitExit(15_000)) return exitCode ?? null;
      process.kill(-pid, 'SIGKILL');
      await waitExit(5_000);
      return exitCode ?? null;
    },
    detach() {
      child.unref();
    },
  };

  const started = Date.now();
  let lastReport = started;
  for (;;) {
    if (exitCode !== undefined) {
      throw new StartupError(
        `the stack exited (code ${exitCode}) before it was ready; the end of ${logFile}:\n${await lastLines(logFile, 25)}`,
      );
    }
    try {
      const res = await fetch(`${opts.apiUrl}/health/ready`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return stack;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > opts.timeoutMs) {
      await stack.stop();
      throw new StartupError(
        `the stack was not ready after ${Math.round(opts.timeoutMs / 1000)} s; the end of ${logFile}:\n${await lastLines(logFile, 25)}`,
      );
    }
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      opts.onWaiting?.(lastReport - started);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
