// The floor workflow's two activities: a read that answers at once, and a bare Engine API start.
import Docker from 'dockerode';

const docker = new Docker();

export async function look(): Promise<boolean> {
  return true;
}

export async function startContainer(container: string): Promise<void> {
  await docker.getContainer(container).start();
}
