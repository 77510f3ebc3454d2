// Moved to src/read-model/orders.ts. Kept only for src/api/routes/orders.ts, which is being
// split in another branch: point its import at ../../read-model/orders and delete this file.
export { insertOrder } from '../read-model/orders';
