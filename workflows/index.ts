// Every workflow the engine's worker registers. Triggers start them by these exported names.
export { serviceDown } from './serviceDown.js';
export { databaseConnection } from './databaseConnection.js';
export { highErrorRate } from './highErrorRate.js';
export { resourcePressure } from './resourcePressure.js';
export { maintenance } from './maintenance.js';
export { guardrails } from './guardrails.js';
