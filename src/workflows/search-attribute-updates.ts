/**
 * Search-attribute updates that skip what the workflow already carries. Each upsert is a
 * history event and a visibility write on the server; the API starts an order with its
 * attributes, an order starts its parcels' workflows with theirs, and a continue-as-new
 * carries them over, so the workflow's own upsert at start is needed only where a starter
 * did not set them (an import, a test, a restart by hand). Deterministic: the attributes a
 * workflow carries come from its history. Workflow code only.
 */
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';

export function upsertChangedSearchAttributes(pairs: SearchAttributeUpdatePair[]): void {
  const carried = workflowInfo().typedSearchAttributes;
  const changed = pairs.filter((pair) => carried.get(pair.key) !== pair.value);
  if (changed.length > 0) upsertSearchAttributes(changed);
}
