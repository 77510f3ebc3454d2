/**
 * A Temporal server (the CLI's dev server or the real server) as a child process of this one,
 * started and stopped on deadlines of its own: the SDK's `createLocal` gives its client 10 s to
 * connect and, when that passes (a restart under load), throws and leaves the server it started
 * running. The bench stack and the real-server target both run theirs through this.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { Connection } from '@temporalio/client';
import { StartupError } from '../src/main-helpers';
import { temporalIsServing } from '../src/temporal';

/** How long a server may take to answer after it is started (a restart on a busy machine recovers its data first). */
export const TEMPORAL_START_DEADLINE_MS = 120_000;
/** How long a SIGTERM may take before SIGKILL. */
const STOP_DEADLINE_MS = 20_000;

export interface SupervisedTemporal {
  /** `host:port` of its frontend. */
  address: string;
  /** The server's process; null while it is down. */
  pid(): number | null;
  /** Starts it and waits until its frontend answers SERVING. */
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL after 20 s; waits for the process to be gone. */
  stop(): Promise<void>;
}

/**
 * Polls Temporal's health check every half second until it answers SERVING; false when
 * `timeoutMs` passes first.
 */
export async function waitForTemporal(connection: Connection, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await temporalIsServing(connection, Math.min(2_000, Math.max(1, deadline - Date.now())))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function superviseTemporal(opts: {
  /** For messages: "the Temporal dev server". */
  label: string;
  executable: string;
  args: string[];
  address: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  cwd?: string;
}): SupervisedTemporal {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const stop = async () => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), STOP_DEADLINE_MS);
      }),
    ]);
    // A pending 20 s timer would keep a test process (Jest) alive after its last test.
    clearTimeout(timer);
    if (!gone) {
      proc.kill('SIGKILL');
      await exited;
    }
  };

  return {
    address: opts.address,
    pid: () => child?.pid ?? null,
    stop,
    async start() {
      if (child) throw new Error(`${opts.label} is already running`);
      const out = fs.openSync(opts.logFile, 'a');
      const proc = spawn(opts.executable, opts.args, {
        stdio: ['ignore', out, out],
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
      });
      fs.closeSync(out);
      child = proc;
      let exitCode: number | string | null = null;
      exited = new Promise((resolve) =>
        proc.once('exit', (code, signal) => {
          exitCode = code ?? signal;
          if (child === proc) child = null;
          resolve();
        }),
      );
      // A probe of its own: channels to this address from before a restart may still be backing off.
      const probe = Connection.lazy({
        address: opts.address,
        channelArgs: { 'grpc.use_local_subchannel_pool': 1 },
      });
      try {
        const deadline = Date.now() + TEMPORAL_START_DEADLINE_MS;
        while (child === proc && Date.now() < deadline) {
          if (await waitForTemporal(probe, Math.min(2_000, deadline - Date.now()))) return;
        }
      } finally {
        await probe.close().catch(() => undefined);
      }
      if (child !== proc) {
        throw new StartupError(`${opts.label} exited (${exitCode}) before it served; see ${opts.logFile}`);
      }
      await stop();
      throw new StartupError(
        `${opts.label} did not answer on ${opts.address} within ${TEMPORAL_START_DEADLINE_MS / 1000} s of starting; see ${opts.logFile}`,
      );
    },
  };
}
