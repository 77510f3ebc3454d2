/** Every workflow type the worker registers. */
export { shipmentWorkflow } from './shipment';
export { orderWorkflow } from './order';
export { dailyReportWorkflow } from './reports';
export { housekeepingWorkflow } from './housekeeping';
export { importWorkflow } from './import';
export { fleetRunWorkflow } from './fleet-run';
