/**
 * Where a V8 CPU profile (`node --cpu-prof`, e.g. BENCH_CPU_PROF of bench/read-api.ts) spent
 * its time: the busy share (samples not idle), then the top functions and the top areas
 * (a package under node_modules, a file of ours, or V8's own: GC, program) by self time,
 * and the top functions and areas by inclusive time (a sample counts once for every
 * function or area on its stack). Given a sampling heap profile (`.heapprofile`, e.g.
 * BENCH_HEAP_PROF of bench/read-api.ts), the same tables weigh bytes allocated instead.
 *
 *   node --import tsx bench/cpu-profile.ts <file.cpuprofile | file.heapprofile | folder> [top=25] [filter]
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

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A sampling heap profile (`HeapProfiler.stopSampling`): a tree of frames, each sample an allocation. */
interface HeapNode {
  id: number;
  callFrame: CallFrame;
  children: HeapNode[];
}
interface HeapProfile {
  head: HeapNode;
  samples: { size: number; nodeId: number }[];
  /** Requests the server answered while sampling (bench/read-api.ts adds it). */
  requests?: number;
}

/** Either profile as frames with their parents and weighted samples (µs of time, or bytes allocated). */
interface Weighed {
  byId: Map<number, ProfileNode>;
  parent: Map<number, number>;
  samples: { id: number; weight: number }[];
  heap: boolean;
  requests?: number;
}

function weigh(raw: CpuProfile | HeapProfile): Weighed {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  if ('head' in raw) {
    const visit = (node: HeapNode) => {
      byId.set(node.id, { id: node.id, callFrame: node.callFrame });
      for (const child of node.children) {
        parent.set(child.id, node.id);
        visit(child);
      }
    };
    visit(raw.head);
    return {
      byId,
      parent,
      samples: raw.samples.map((s) => ({ id: s.nodeId, weight: s.size })),
      heap: true,
      requests: raw.requests,
    };
  }
  for (const n of raw.nodes) byId.set(n.id, n);
  for (const n of raw.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const samples = raw.samples.map((id, i) => ({ id, weight: raw.timeDeltas[i] ?? 0 }));
  return { byId, parent, samples, heap: false };
}

function largestProfileIn(dir: string): string {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile') || f.endsWith('.heapprofile'))
    .map((f) => `${dir}/${f}`);
  if (files.length === 0) throw new Error(`no .cpuprofile or .heapprofile in ${dir}`);
  return files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
}

function main(): void {
  const [file, topArg, filter] = process.argv.slice(2);
  if (!file)
    throw new Error('usage: cpu-profile.ts <file.cpuprofile | file.heapprofile | folder> [top] [filter]');
  const top = Number(topArg ?? 25);
  const path = fs.statSync(file).isDirectory() ? largestProfileIn(file) : file;
  const { byId, parent, samples, heap, requests } = weigh(
    JSON.parse(fs.readFileSync(path, 'utf8')) as CpuProfile | HeapProfile,
  );

  const selfFn = new Map<string, number>();
  const selfArea = new Map<string, number>();
  const inclFn = new Map<string, number>();
  const inclArea = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  let total = 0;
  let idle = 0;
  for (const { id, weight } of samples) {
    total += weight;
    // A heap profile's sample can name a node its tree no longer holds: counted, unattributed.
    const node = byId.get(id) ?? {
      id,
      callFrame: { functionName: '(unattributed)', url: '', lineNumber: 0 },
    };
    if (node.callFrame.functionName === '(idle)') {
      idle += weight;
      continue;
    }
    add(selfFn, functionOf(node.callFrame), weight);
    add(selfArea, areaOf(node.callFrame), weight);
    const fns = new Set<string>();
    const areas = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = (byId.get(at) ?? node).callFrame;
      if (frame.functionName === '(root)') continue;
      fns.add(functionOf(frame));
      areas.add(areaOf(frame));
    }
    for (const f of fns) add(inclFn, f, weight);
    for (const a of areas) add(inclArea, a, weight);
  }

  const busy = total - idle;
  const what = heap ? 'bytes allocated' : 'time';
  const share = heap ? 'share of bytes allocated' : 'share of busy time';
  const pct = (v: number) => `${((100 * v) / busy).toFixed(1).padStart(5)} %`;
  const table = (title: string, m: Map<string, number>, only?: string) => {
    const rows = [...m].filter(([k]) => !only || k.includes(only)).sort((a, b) => b[1] - a[1]);
    process.stdout.write(`\n${title} (${share})\n`);
    for (const [k, v] of rows.slice(0, top)) process.stdout.write(`  ${pct(v)}  ${k}\n`);
  };
  process.stdout.write(
    heap
      ? `${path}: ${(total / 2 ** 20).toFixed(1)} MiB allocated (sampled, garbage included) in ${samples.length} samples${
          requests ? `, ${requests} requests: ${(total / 1024 / requests).toFixed(1)} KiB a request` : ''
        }\n`
      : `${path}: ${(total / 1e6).toFixed(1)} s profiled, busy ${(busy / 1e6).toFixed(1)} s (${((100 * busy) / total).toFixed(0)} %)\n`,
  );
  table(`self ${what} by area`, selfArea);
  table(`self ${what} by function`, selfFn);
  table(`inclusive ${what} by area`, inclArea, filter);
  table(`inclusive ${what} by function`, inclFn, filter);
}

main();
