// The floor workflows' activities: a read that answers at once, a claim on a guard workflow (an
// update-with-start, as the engine's restart claim is), and a bare Engine API start.
import Docker from 'dockerode';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { claimUpdate, floorGuard } from './workflow.js';

const docker = new Docker();

export function floorActivities(client: Client, guardQueue: string) {
  return {
    async look(): Promise<boolean> {
      return true;
    },

    async claim(guardId: string): Promise<number> {
      const startGuard = new WithStartWorkflowOperation(floorGuard, {
        workflowId: guardId,
        taskQueue: guardQueue,
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      return client.workflow.executeUpdateWithStart(claimUpdate, { args: [1], startWorkflowOperation: startGuard });
    },

    async startContainer(container: string): Promise<void> {
      await docker.getContainer(container).start();
    },
  };
}
