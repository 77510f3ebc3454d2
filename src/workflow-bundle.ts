/**
 * How Waybill's workflow code is bundled, the same for the worker, the tests' prebuilt bundle
 * and the benchmarks' replays (a replay must run the code as the worker runs it).
 */
export const workflowsPath = require.resolve('./workflows');

/**
 * Waybill's workflow modules are evaluated once per workflow thread and shared by every workflow
 * it runs (the SDK's `preloadModules`), not once per workflow: otherwise each cached workflow
 * holds its own copy of every module record, closure and constant of src/workflows and the pure
 * code it imports (88 KiB of a cached workflow's 331 KiB of RSS, docs/benchmarks.md#worker-sizing).
 * Sharing is sound because those modules keep no state at module scope: definitions (signals,
 * queries, updates, activity proxies that find the running workflow when called), pure functions
 * and constants. eslint.config.mjs forbids a module-scope `let` or `var` in them, and
 * test/workflow-bundle.test.ts checks that the bundle holds no other module of Waybill's. The SDK
 * also freezes what shared modules export.
 */
export const preloadModules: string[] = [workflowsPath];
