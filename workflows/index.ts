// Every workflow the engine's worker registers. Triggers start them by these exported names.
// `runbook` runs every runbook file; the compiled runbooks stay registered while runs that started
// on them (before runbook files) may still be open, and their recorded histories replay in CI.
export { runbook } from './runbook.js';
export { serviceDown } from './serviceDown.js';
export { databaseConnection } from './databaseConnection.js';
export { highErrorRate } from './highErrorRate.js';
export { resourcePressure } from './resourcePressure.js';
export { maintenance } from './maintenance.js';
export { guardrails } from './guardrails.js';
export { intake } from './intake.js';
