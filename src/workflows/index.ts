/** Every workflow type the worker registers. */
export { shipmentWorkflow } from './shipment';
export { orderWorkflow } from './order';
