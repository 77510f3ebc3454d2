/**
 * Finds the Temporal CLI (which carries the dev server and the UI) for the dev stack and
 * the tests, in this order:
 *
 * 1. `TEMPORAL_CLI_PATH`
 * 2. `temporal` on PATH
 * 3. a cached build: `<cacheDir>/temporal-<version>/temporal`
 * 4. `go install github.com/temporalio/cli/cmd/temporal@<version>` into that cache, when Go
 *    (>= 1.25) is present: the first build takes minutes, progress is logged
 * 5. the SDK's own download (needs internet access to GitHub/temporal.download)
 *
 * v1.5.1 is the newest tag `go install module@version` can build: later tags carry a
 * `replace` directive in go.mod, which `go install` refuses.
 */
import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const MIN_GO = [1, 25] as const;
/** Where Go lives on machines that have it but not on PATH (the official tarball's place). */
const GO_FALLBACK_PATHS = ['/usr/local/go/bin/go'];

const execFileAsync = promisify(execFile);

export type TemporalCliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'go install' | 'sdk download';

export type ServerExecutable =
  { type: 'existing-path'; path: string } | { type: 'cached-download'; downloadDir: string };

export interface ResolvedTemporalCli {
  source: TemporalCliSource;
  executable: ServerExecutable;
}

export interface ResolveOptions {
  /** TEMPORAL_CLI_PATH, if set. */
  cliPath: string | null;
  /** Cache folder outside the repo (e.g. ~/.cache/waybill). */
  cacheDir: string;
  /** Progress lines; the go build is long and must not look hung. */
  log: (message: string) => void;
}

export class TemporalCliError extends Error {
  override name = 'TemporalCliError';
}

export function cachedCliPath(cacheDir: string): string {
  return path.join(cacheDir, `temporal-${TEMPORAL_CLI_VERSION}`, 'temporal');
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) return false;
    await fs.access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `command -v name` through the shell, so PATH is searched exactly as a user's shell would. */
async function onPath(name: string): Promise<string | null> {
  try {
    const { stdout } = await execFileAsync('sh', ['-c', 'command -v "$1"', 'sh', name]);
    const found = stdout.trim();
    return found && (await isExecutable(found)) ? found : null;
  } catch {
    return null;
  }
}

export async function findGo(): Promise<{ go: string; version: string } | null> {
  const candidates = [await onPath('go'), ...GO_FALLBACK_PATHS].filter((c): c is string => c !== null);
  for (const go of candidates) {
    if (!(await isExecutable(go))) continue;
    try {
      const { stdout } = await execFileAsync(go, ['env', 'GOVERSION']);
      return { go, version: stdout.trim() };
    } catch {
      // Not a working Go; try the next one.
    }
  }
  return null;
}

export function goVersionAtLeast(version: string, min: readonly [number, number] = MIN_GO): boolean {
  const match = /^go(\d+)\.(\d+)/.exec(version);
  if (!match) return false;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major > min[0] || (major === min[0] && minor >= min[1]);
}

function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** One `go install` of pinned packages whose binaries go into a cache folder. */
export interface GoBuild {
  /** What is built, for the progress lines ("the Temporal CLI v1.5.1"). */
  label: string;
  /** `module/path@version` arguments to `go install`. */
  packages: string[];
  /** Where each binary `go install` writes (by its name, the package's last element) ends up. */
  outputs: Record<string, string>;
}

/**
 * Builds with `go install` into a scratch folder beside the first output, then moves each
 * binary into place (a rename, so a half-built binary is never found in the cache).
 */
export async function goInstall(go: string, build: GoBuild, log: (m: string) => void): Promise<void> {
  const targets = Object.values(build.outputs);
  const dir = path.dirname(targets[0]!);
  await fs.mkdir(dir, { recursive: true });
  const scratch = await fs.mkdtemp(path.join(dir, '.build-'));
  const started = Date.now();
  log(`building ${build.label} with go install (first run only; it takes several minutes)`);
  let packages = 0;
  let lastOutput = '';
  const timer = setInterval(() => {
    log(`  still building: ${packages} packages compiled, ${formatElapsed(Date.now() - started)} elapsed`);
  }, 15_000);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', '-v', ...build.packages], {
        env: { ...process.env, GOBIN: scratch },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const onData = (chunk: Buffer) => {
        const text = chunk.toString();
        packages += text.split('\n').filter((line) => line.trim() !== '').length;
        lastOutput = (lastOutput + text).slice(-4000);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve();
        else
          reject(
            new TemporalCliError(
              `go install exited with code ${code}: ${lastOutput.trim().split('\n').slice(-5).join(' | ')}`,
            ),
          );
      });
    });
    for (const [name, target] of Object.entries(build.outputs)) {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.rename(path.join(scratch, name), target);
    }
    log(`built ${build.label} in ${formatElapsed(Date.now() - started)}: ${targets.join(', ')}`);
  } finally {
    clearInterval(timer);
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Resolves the Temporal CLI binary; see the module comment for the order. */
export async function resolveTemporalCli(opts: ResolveOptions): Promise<ResolvedTemporalCli> {
  if (opts.cliPath !== null) {
    if (!(await isExecutable(opts.cliPath))) {
      throw new TemporalCliError(
        `TEMPORAL_CLI_PATH points at ${opts.cliPath}, which is not an executable file`,
      );
    }
    return { source: 'TEMPORAL_CLI_PATH', executable: { type: 'existing-path', path: opts.cliPath } };
  }

  const fromPath = await onPath('temporal');
  if (fromPath) return { source: 'PATH', executable: { type: 'existing-path', path: fromPath } };

  const cached = cachedCliPath(opts.cacheDir);
  if (await isExecutable(cached))
    return { source: 'cache', executable: { type: 'existing-path', path: cached } };

  const go = await findGo();
  if (go && goVersionAtLeast(go.version)) {
    try {
      await goInstall(
        go.go,
        {
          label: `the Temporal CLI ${TEMPORAL_CLI_VERSION}`,
          packages: [`${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`],
          outputs: { temporal: cached },
        },
        opts.log,
      );
      return { source: 'go install', executable: { type: 'existing-path', path: cached } };
    } catch (err) {
      opts.log(
        `go install of the Temporal CLI failed (${(err as Error).message}); trying the SDK's download`,
      );
    }
  } else if (go) {
    opts.log(
      `found ${go.version} at ${go.go}, but building the Temporal CLI needs Go >= ${MIN_GO.join('.')}`,
    );
  } else {
    opts.log('no Temporal CLI on PATH or in the cache and no Go to build it; trying the SDK download');
  }

  const downloadDir = path.join(opts.cacheDir, 'sdk-download');
  await fs.mkdir(downloadDir, { recursive: true });
  return { source: 'sdk download', executable: { type: 'cached-download', downloadDir } };
}
