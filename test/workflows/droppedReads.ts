// Workflow code, bundled only for test/workflows/droppedReads.test.ts: an outbound interceptor that
// answers a run's first local silence checks (on their own, or among the first reads asked
// together) as core answers a run's outstanding local activities when it evicts the run from its cache (a full cache under a backlog): cancelled, though nobody
// cancelled the run. Core itself will not do that on cue in a test (a worker with a small cache
// stops polling before its cache overflows). The target's name says how many: `dropped-<n>-…`.
import { CancelledFailure, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

// Module state is the run's own: each workflow run has its own module instances.
let dropped = 0;

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleLocalActivity(input, next) {
        // The check on its own, or among the first reads asked together.
        const reads = input.activityType === 'readsTogether' ? (input.args[0] as Array<{ kind: string; args: unknown[] }>) : [];
        const check = input.activityType === 'checkSuppression' ? input.args : reads.find((r) => r.kind === 'checkSuppression')?.args;
        const times = /^dropped-(\d+)-/.exec(String(check?.[0]))?.[1];
        if (times !== undefined && dropped < Number(times)) {
          dropped += 1;
          return Promise.reject(new CancelledFailure('Local Activity cancelled'));
        }
        return next(input);
      },
    },
  ],
});
