/** The demo's command line: its flags, their parsing and the usage text. */
import { parseDuration } from '../../src/config';
import { DEMO_KINDS, type DemoKind } from './kinds';
import { parseKinds, PlanError } from './plan';

// ---------------------------------------------------------------------------------------
// Command line

export interface DemoArgs {
  help: boolean;
  /** Use the stack that already answers on the configured port instead of starting one. */
  attach: boolean;
  /** Leave the stack the demo started running at the end. */
  keep: boolean;
  kinds: DemoKind[] | undefined;
  orders: number | undefined;
  /** How long the orders may take to settle, from the first one placed (ms). */
  timeoutMs: number;
  /** Known bugs count as failures. */
  strict: boolean;
}

export const DEMO_USAGE = `usage: npm run demo -- [--attach] [--keep] [--scenarios a,b,…] [--orders N] [--timeout 10m] [--strict]

  --attach          use the Waybill stack already answering on WAYBILL_PORT (it must run with
                    the demo's settings, e.g. one left by --keep); without it the demo refuses
                    to touch a running stack
  --keep            leave the stack the demo started running (prints how to stop it)
  --scenarios a,b   only these kinds of order (default: all of them)
  --orders N        place N orders, dealt over the chosen kinds in turn (default: 39, each
                    kind its own count)
  --timeout T       fail when the orders have not all settled T after the first one was placed
                    (default 10m; the stack's start-up does not count)
  --strict          orders that hit a known bug (listed in the results) fail the run too

kinds: ${DEMO_KINDS.join(', ')}`;

/** Parses the demo's flags; throws {@link PlanError} with the problem and the usage. */
export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const args: DemoArgs = {
    help: false,
    attach: false,
    keep: false,
    kinds: undefined,
    orders: undefined,
    timeoutMs: 600_000,
    strict: false,
  };
  const value = (i: number, flag: string): string => {
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--'))
      throw new PlanError(`${flag} needs a value\n${DEMO_USAGE}`);
    return next;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const take = () => inline ?? value(i++, flag);
    switch (flag) {
      case '--help':
      case '-h':
        args.help = true;
        break;
      case '--attach':
        args.attach = true;
        break;
      case '--keep':
        args.keep = true;
        break;
      case '--strict':
        args.strict = true;
        break;
      case '--scenarios':
        args.kinds = parseKinds(take());
        break;
      case '--orders': {
        const text = take();
        if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 500) {
          throw new PlanError(`--orders must be a whole number from 1 to 500 (got "${text}")`);
        }
        args.orders = Number(text);
        break;
      }
      case '--timeout': {
        const text = take();
        const ms = parseDuration(text);
        if (ms === null)
          throw new PlanError(`--timeout must be a duration such as 90s or 10m (got "${text}")`);
        args.timeoutMs = ms;
        break;
      }
      default:
        throw new PlanError(`unknown argument ${arg}\n${DEMO_USAGE}`);
    }
  }
  return args;
}
