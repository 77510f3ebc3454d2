// Moved to src/read-model/order-tracking.ts. Kept only for src/api/routes/orders.ts, which is
// being split in another branch: point its import at ../../read-model/order-tracking and
// delete this file.
export { orderTrackingById, orderTrackingByNumber } from '../read-model/order-tracking';
