/**
 * `rlm sandbox prune --images`: stale sandbox images go, the current one and images in use stay.
 */
import { randomBytes } from 'node:crypto';
import type Dockerode from 'dockerode';
import { pack } from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createDockerClient } from '../orchestrator/src/sandbox/docker-client.js';
import { IMAGE_INPUTS_LABEL } from '../orchestrator/src/sandbox/image/ensure-sandbox-image.js';
import { pruneSandboxImages } from '../orchestrator/src/sandbox/image/prune-sandbox-images.js';

const docker = createDockerClient();
// A repository of this run's own, so pruning cannot touch images other test files are using.
const repository = `rlm-sandbox-prune-test-${randomBytes(4).toString('hex')}`;

/**
 * Builds an empty image labelled like a sandbox image, tagged `repository:name`. The label names the
 * repository too, so each run's images have ids of their own: a run that prunes its images cannot
 * untag another run's.
 */
async function labelledImage(docker: Dockerode, name: string): Promise<string> {
  const context = pack();
  context.entry({ name: 'Dockerfile' }, `FROM scratch\nLABEL ${IMAGE_INPUTS_LABEL}=${repository}-${name}\nCMD ["/nothing"]\n`);
  context.finalize();
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: `${repository}:${name}` });
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))));
  return `${repository}:${name}`;
}

afterAll(async () => {
  const images = await docker.listImages({ filters: { reference: [`${repository}`] } });
  for (const image of images)
    await docker
      .getImage(image.Id)
      .remove({ force: true })
      .catch(() => undefined);
});

describe('pruneSandboxImages', () => {
  it('removes stale sandbox images and keeps the current one and any a container still uses', async () => {
    const current = await labelledImage(docker, 'current');
    const stale = await labelledImage(docker, 'stale');
    const used = await labelledImage(docker, 'used');
    const container = await docker.createContainer({ Image: used, name: `${repository}-user` });
    try {
      const result = await pruneSandboxImages({ docker, keep: [current], repository });
      expect(result.removed).toEqual([stale]);
      expect(result.inUse).toEqual([used]);
      expect(result.failed).toEqual([]);
      await expect(docker.getImage(current).inspect()).resolves.toBeDefined();
      await expect(docker.getImage(stale).inspect()).rejects.toMatchObject({ statusCode: 404 });
    } finally {
      await container.remove({ force: true });
    }
  });
});
