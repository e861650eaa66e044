// The workflows a test's intake worker runs: the real intake, and incidents that only wait (so the
// incidents' workflow tasks complete at once and their signals reach their histories without delay).
import { condition } from '@temporalio/workflow';

export { intake } from '../../../workflows/intake.js';

const waitForever = async (): Promise<void> => condition(() => false);
export const runbook = waitForever;
export const serviceDown = waitForever;
export const databaseConnection = waitForever;
