import { defineConfig } from 'vitest/config';

/**
 * Tests that need no stack: pure units, the config, the escalation workflows on the time-skipping
 * test server, the replay tests, and the webhook and operator doors with stand-ins. scripts/test.sh
 * runs them first (`--project no-stack`, with no stack.env to read), so a broken workflow fails in
 * the first minute; the rest need the stack's services or its Temporal CLI. A file that reads
 * stack.env or a stack service does not belong here: the run without one fails it.
 */
export const noStackTests = [
  'test/bench/**/*.test.ts',
  'test/activities/backupFiles.test.ts',
  'test/activities/groupCommit.test.ts',
  'test/activities/intake.test.ts',
  'test/triggers/intakeDoor.test.ts',
  'test/activities/readAhead.test.ts',
  'test/activities/readsTogether.test.ts',
  'test/triggers/guardState.test.ts',
  'test/config/**/*.test.ts',
  'test/workflows/escalationDelivery.test.ts',
  'test/workflows/escalationMatrix.test.ts',
  'test/workflows/replay.test.ts',
  'test/triggers/binding.test.ts',
  'test/triggers/chatDoor.test.ts',
  'test/triggers/cliConfigFile.test.ts',
  'test/triggers/cliCredentials.test.ts',
  'test/triggers/cliOperators.test.ts',
  'test/triggers/consoleDoor.test.ts',
  'test/triggers/consoleOpenView.test.ts',
  'test/triggers/consoleSessions.test.ts',
  'test/triggers/escalationRouting.test.ts',
  'test/triggers/operatorApiClient.test.ts',
  'test/triggers/operatorCredentials.test.ts',
  'test/triggers/operatorReports.test.ts',
  'test/triggers/plan.test.ts',
  'test/triggers/planGroupRestart.test.ts',
  'test/triggers/report.test.ts',
  'test/triggers/reportHtml.test.ts',
  'test/triggers/spool.test.ts',
  'test/triggers/spoolBacklog.test.ts',
  'test/triggers/table.test.ts',
  'test/triggers/webhookBounds.test.ts',
  'test/triggers/webhookHotPath.test.ts',
  'test/triggers/webhookThread.test.ts',
  'test/triggers/threadPriority.test.ts',
  'test/worker/readiness.test.ts',
  'test/worker/workflowTaskSlots.test.ts',
  'test/worker/codecWarmup.test.ts',
  'test/support/ports.test.ts',
  'test/stack/stackEnv.test.ts',
];

export default defineConfig({
  test: {
    // Temporal's worker and native bridge do not belong in worker threads.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    // The workflow bundle is made per project (about 2 s), not also for the root, which runs no test.
    projects: [
      { extends: true, test: { name: 'no-stack', include: noStackTests, globalSetup: ['test/support/globalSetup.ts'] } },
      {
        extends: true,
        test: { name: 'stack', include: ['test/**/*.test.ts'], exclude: noStackTests, globalSetup: ['test/support/globalSetup.ts'] },
      },
    ],
  },
});
