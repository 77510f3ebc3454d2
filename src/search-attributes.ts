/**
 * Waybill's custom search attributes on whatever Temporal it is pointed at.
 * {@link ensureSearchAttributes} runs at every worker start (the worker process and the dev
 * stack): it adds the attributes the namespace lacks through the operator API and leaves
 * those that exist with the right type alone. Where it cannot (an attribute with another
 * type, no permission to add, Temporal Cloud), it throws a StartupError whose one line names
 * the attributes and the exact command that fixes them, so the worker stops before any
 * workflow could fail on them. The attributes and their types are defined once, in
 * src/workflows/search-attributes.ts.
 */
import type { Connection } from '@temporalio/client';
import { SearchAttributeType, TypedSearchAttributes } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import type { Config } from './config';
import type { Logger } from './logger';
import { StartupError } from './main-helpers';
import { GRPC, grpcCode } from './temporal';
import { SEARCH_ATTRIBUTES } from './workflows/search-attributes';

/** A search attribute key as defineSearchAttributeKey makes it. */
type Key = { readonly name: string; readonly type: SearchAttributeType };

export interface EnsuredSearchAttribute {
  name: string;
  /** As the CLI spells it: Keyword, Text, Int… */
  type: string;
  outcome: 'created' | 'unchanged';
}

/** Where the worker talks to; the address decides self-hosted vs Temporal Cloud and goes into the commands. */
export type SearchAttributeTarget = Pick<Config['temporal'], 'address' | 'namespace'>;

const GRPC_NAMES: Record<number, string> = {
  [GRPC.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [GRPC.UNIMPLEMENTED]: 'UNIMPLEMENTED',
  [GRPC.UNAUTHENTICATED]: 'UNAUTHENTICATED',
};
/** Answers that mean "you may not use the operator API here", not "Temporal is broken". */
const NOT_ALLOWED: ReadonlySet<number> = new Set([
  GRPC.PERMISSION_DENIED,
  GRPC.UNIMPLEMENTED,
  GRPC.UNAUTHENTICATED,
]);

/** Temporal Cloud endpoints: `<namespace>.<account>.tmprl.cloud` (mTLS) and `<region>.<cloud>.api.temporal.io` (API keys). */
export function isTemporalCloud(address: string): boolean {
  const host = address.replace(/:\d+$/, '').toLowerCase();
  return host.endsWith('.tmprl.cloud') || host.endsWith('.api.temporal.io');
}

const typeName = (key: Key): string => TypedSearchAttributes.toMetadataType(key.type);
const indexedType = (key: Key): number => encodeSearchAttributeIndexedValueType(key.type)!;
/** The server's indexed types by number, as the CLI spells them. */
const INDEXED_TYPE_NAMES = new Map(
  Object.values(SearchAttributeType).map((type) => [
    encodeSearchAttributeIndexedValueType(type)!,
    TypedSearchAttributes.toMetadataType(type),
  ]),
);
const indexedTypeName = (indexed: number): string => INDEXED_TYPE_NAMES.get(indexed) ?? `type ${indexed}`;

/**
 * `temporal operator search-attribute create` for these keys, one `--name … --type …` pair
 * each: the CLI pairs names with types by position and silently skips a name without its own
 * type. Re-running it for an attribute that exists with the same type succeeds, so
 * docker-compose runs it as is.
 */
export function searchAttributeCreateCommand(
  target: { namespace: string; address?: string },
  keys: readonly Key[] = SEARCH_ATTRIBUTES,
): string {
  const address = target.address ? ` --address ${target.address}` : '';
  const pairs = keys.map((key) => `--name ${key.name} --type ${typeName(key)}`).join(' ');
  return `temporal operator search-attribute create${address} --namespace ${target.namespace} ${pairs}`;
}

/** `tcld namespace search-attributes add` for these keys (Temporal Cloud's namespace id is TEMPORAL_NAMESPACE). */
export function tcldAddCommand(namespace: string, keys: readonly Key[]): string {
  const flags = keys.map((key) => `--search-attribute ${key.name}=${typeName(key)}`).join(' ');
  return `tcld namespace search-attributes add --namespace ${namespace} ${flags}`;
}

const names = (keys: readonly Key[]) => keys.map((k) => k.name).join(', ');
const attributes = (keys: readonly Key[]) =>
  `${keys.length === 1 ? 'search attribute' : 'search attributes'} ${names(keys)}`;

/**
 * The custom attributes the namespace has, by name, with their indexed type; null when the
 * operator API may not be used here (Temporal Cloud, an authorizer that denies it).
 */
async function listCustom(connection: Connection, namespace: string): Promise<Map<string, number> | null> {
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    return new Map(Object.entries(customAttributes ?? {}).map(([name, type]) => [name, Number(type)]));
  } catch (err) {
    if (NOT_ALLOWED.has(grpcCode(err) ?? -1)) return null;
    throw err;
  }
}

/**
 * Without the operator API, a visibility query tells whether an attribute exists (the server
 * refuses a query on an unknown one), though not its type.
 */
async function existsByQuery(connection: Connection, namespace: string, key: Key): Promise<boolean> {
  try {
    await connection.workflowService.countWorkflowExecutions({ namespace, query: `${key.name} = 'probe'` });
    return true;
  } catch (err) {
    if (grpcCode(err) === GRPC.INVALID_ARGUMENT && (err as Error).message.includes(key.name)) return false;
    throw err;
  }
}

type WrongType = { key: Key; actual: number };

/** The keys the namespace has with another type than Waybill's. */
function wrongTypes(keys: readonly Key[], existing: Map<string, number>): WrongType[] {
  return keys.flatMap((key) => {
    const actual = existing.get(key.name);
    return actual !== undefined && actual !== indexedType(key) ? [{ key, actual }] : [];
  });
}

function wrongTypeLine(target: SearchAttributeTarget, wrong: WrongType[]): string {
  const { address, namespace } = target;
  const [first] = wrong;
  const what =
    wrong.length === 1
      ? `the search attribute ${first!.key.name} in the Temporal namespace ${namespace} is ${indexedTypeName(first!.actual)}, but Waybill needs ${typeName(first!.key)}`
      : `the search attributes ${wrong.map(({ key, actual }) => `${key.name} (${indexedTypeName(actual)}, not ${typeName(key)})`).join(', ')} in the Temporal namespace ${namespace} have other types than Waybill needs`;
  const it = wrong.length === 1 ? 'it' : 'them';
  const fix = isTemporalCloud(address)
    ? `rename ${it} out of the way (tcld namespace search-attributes rename) and start the worker again, or set TEMPORAL_NAMESPACE to another namespace`
    : `remove ${it} (temporal operator search-attribute remove --address ${address} --namespace ${namespace} ${wrong.map(({ key }) => `--name ${key.name}`).join(' ')}) and start the worker again, or set TEMPORAL_NAMESPACE to another namespace`;
  return `${what}: ${fix}`;
}

function cloudLine(target: SearchAttributeTarget, missing: readonly Key[]): string {
  return `the Temporal Cloud namespace ${target.namespace} lacks the ${attributes(missing)}, and a worker cannot add them on Temporal Cloud; add them in the Cloud UI or with: ${tcldAddCommand(target.namespace, missing)}`;
}

function deniedLine(target: SearchAttributeTarget, missing: readonly Key[], refusal: string): string {
  return `the Temporal namespace ${target.namespace} lacks the ${attributes(missing)}, and this worker may not add them (${refusal}); add them with: ${searchAttributeCreateCommand(target, missing)}`;
}

/**
 * Makes sure every attribute of {@link SEARCH_ATTRIBUTES} exists in the namespace with its
 * type: adds the missing ones, changes nothing else. Throws a StartupError (one line) when
 * an attribute has another type, or when the missing ones cannot be added from here.
 */
export async function ensureSearchAttributes(
  connection: Connection,
  target: SearchAttributeTarget,
  log: Logger,
): Promise<EnsuredSearchAttribute[]> {
  const keys = SEARCH_ATTRIBUTES;
  const { namespace } = target;
  const existing = await listCustom(connection, namespace);
  let missing: Key[];
  if (existing) {
    const wrong = wrongTypes(keys, existing);
    if (wrong.length > 0) throw new StartupError(wrongTypeLine(target, wrong));
    missing = keys.filter((key) => !existing.has(key.name));
  } else {
    log.warn(
      { namespace },
      'the operator API may not list search attributes here: checked that they exist, not their types',
    );
    missing = [];
    for (const key of keys) if (!(await existsByQuery(connection, namespace, key))) missing.push(key);
  }

  if (missing.length > 0) {
    // Temporal Cloud has no operator API to add them: only tcld or its UI can.
    if (isTemporalCloud(target.address)) throw new StartupError(cloudLine(target, missing));
    try {
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map((key) => [key.name, indexedType(key)])),
      });
    } catch (err) {
      const code = grpcCode(err) ?? -1;
      if (NOT_ALLOWED.has(code)) throw new StartupError(deniedLine(target, missing, GRPC_NAMES[code]!));
      throw new StartupError(
        `could not add the ${attributes(missing)} to the Temporal namespace ${namespace} (${(err as Error).message}); add them with: ${searchAttributeCreateCommand(target, missing)}`,
      );
    }
    // The server answers "added" for an attribute that another worker has just added with
    // another type, so read back what the namespace has now.
    const after = await listCustom(connection, namespace);
    if (after) {
      const wrong = wrongTypes(missing, after);
      if (wrong.length > 0) throw new StartupError(wrongTypeLine(target, wrong));
      const absent = missing.filter((key) => !after.has(key.name));
      if (absent.length > 0) {
        throw new StartupError(
          `the Temporal namespace ${namespace} answered that it added the ${attributes(absent)} but does not list them; add them with: ${searchAttributeCreateCommand(target, absent)}`,
        );
      }
    }
    log.info({ namespace, added: missing.map((k) => k.name) }, 'search attributes added');
  }
  return keys.map((key) => ({
    name: key.name,
    type: typeName(key),
    outcome: missing.includes(key) ? 'created' : 'unchanged',
  }));
}
