/**
 * Where a V8 CPU profile (`node --cpu-prof`, e.g. BENCH_CPU_PROF of bench/read-api.ts) spent
 * its time: the busy share (samples not idle), then the top functions and the top areas
 * (a package under node_modules, a file of ours, or V8's own: GC, program) by self time,
 * and the top functions and areas by inclusive time (a sample counts once for every
 * function or area on its stack).
 *
 *   node --import tsx bench/cpu-profile.ts <file.cpuprofile | folder> [top=25] [filter]
 *
 * Given a folder, it reads the largest profile there: the main thread's (a loader thread,
 * such as tsx's, writes a small one of its own).
 * With `filter`, the inclusive tables list only names containing it (e.g. `rate-limit`).
 */
import fs from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The package a script belongs to (`fastify`, `@fastify/rate-limit`), our file, or V8's own. */
function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return `(${functionName.replace(/[()]/g, '') || 'native'})`;
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules) return inModules[1]!;
  if (url.startsWith('node:')) return url;
  const ours = /\/(src|db|bench)\/(.*)$/.exec(url);
  return ours ? `${ours[1]}/${ours[2]}` : url;
}

const functionOf = (frame: CallFrame) =>
  `${frame.functionName || '(anonymous)'} ${areaOf(frame)}:${frame.lineNumber + 1}`;

function largestProfileIn(dir: string): string {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => `${dir}/${f}`);
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  return files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
}

function main(): void {
  const [file, topArg, filter] = process.argv.slice(2);
  if (!file) throw new Error('usage: cpu-profile.ts <file.cpuprofile> [top] [filter]');
  const top = Number(topArg ?? 25);
  const path = fs.statSync(file).isDirectory() ? largestProfileIn(file) : file;
  const profile = JSON.parse(fs.readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfFn = new Map<string, number>();
  const selfArea = new Map<string, number>();
  const inclFn = new Map<string, number>();
  const inclArea = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id)!;
    total += dt;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      return;
    }
    add(selfFn, functionOf(node.callFrame), dt);
    add(selfArea, areaOf(node.callFrame), dt);
    const fns = new Set<string>();
    const areas = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (frame.functionName === '(root)') continue;
      fns.add(functionOf(frame));
      areas.add(areaOf(frame));
    }
    for (const f of fns) add(inclFn, f, dt);
    for (const a of areas) add(inclArea, a, dt);
  });

  const busy = total - idle;
  const pct = (v: number) => `${((100 * v) / busy).toFixed(1).padStart(5)} %`;
  const table = (title: string, m: Map<string, number>, only?: string) => {
    const rows = [...m].filter(([k]) => !only || k.includes(only)).sort((a, b) => b[1] - a[1]);
    process.stdout.write(`\n${title} (share of busy time)\n`);
    for (const [k, v] of rows.slice(0, top)) process.stdout.write(`  ${pct(v)}  ${k}\n`);
  };
  process.stdout.write(
    `${path}: ${(total / 1e6).toFixed(1)} s profiled, busy ${(busy / 1e6).toFixed(1)} s (${((100 * busy) / total).toFixed(0)} %)\n`,
  );
  table('self time by area', selfArea);
  table('self time by function', selfFn);
  table('inclusive time by area', inclArea, filter);
  table('inclusive time by function', inclFn, filter);
}

main();
