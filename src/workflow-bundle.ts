/**
 * How Waybill's workflow code is bundled: the worker, the tests' prebuilt bundle and the
 * benchmarks' replays take their options from here.
 */
export const workflowsPath = require.resolve('./workflows');

/**
 * The bundler's options. With `sharedModules` (`WAYBILL_WORKER_SHARED_WORKFLOW_MODULES`, on by
 * default), Waybill's workflow modules are evaluated once per workflow thread and shared by all
 * its workflows (the SDK's `preloadModules`), instead of once per workflow: a cached workflow
 * then holds no copy of their module records, closures and constants, 88 KiB less RSS each
 * (docs/benchmarks.md#worker-sizing). Sharing is sound because those modules keep no state at
 * module scope: definitions (signals, queries, updates, activity proxies that find the running
 * workflow when called), pure functions and constants, only read. eslint.config.mjs forbids a module-scope
 * `let` or `var` and static class state in them (a module-level Map, Set or object changed later
 * it cannot see: don't), the SDK freezes the objects they export when shared, and test/workflow-bundle.test.ts checks that a bundle holds no other
 * module of Waybill's and replays every recorded history twice over with them shared. Off, each
 * workflow evaluates its own copy (the SDK's default).
 */
export function workflowBundlerOptions(sharedModules: boolean): {
  workflowsPath: string;
  preloadModules: string[];
} {
  return { workflowsPath, preloadModules: sharedModules ? [workflowsPath] : [] };
}
