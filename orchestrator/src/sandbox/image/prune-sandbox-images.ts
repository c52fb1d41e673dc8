/**
 * Removes sandbox images that are no longer current. Each change of the REPL server, Node or
 * Pyodide builds a new `rlm-sandbox:<hash>` image (~180 MB) and leaves the previous one behind.
 */
import type Dockerode from 'dockerode';
import { AbortedError, errorMessage } from '../../errors.js';
import { dockerStatusCode } from '../docker-client.js';
import { IMAGE_INPUTS_LABEL, SANDBOX_IMAGE_REPOSITORY } from './ensure-sandbox-image.js';

export interface ImagePruneResult {
  /** Tags (or ids, for untagged images) removed. */
  removed: string[];
  /** Images kept because a container still uses them. */
  inUse: string[];
  failed: Array<{ image: string; error: string }>;
}

/**
 * Removes every image of `repository` (default `rlm-sandbox`) carrying the sandbox image label,
 * except those tagged with one of `keep`. An image a container still uses is left alone (reported
 * in `inUse`), never forced out.
 */
export async function pruneSandboxImages(options: {
  docker: Dockerode;
  keep: readonly string[];
  repository?: string;
  signal?: AbortSignal;
}): Promise<ImagePruneResult> {
  const { docker, keep, signal, repository = SANDBOX_IMAGE_REPOSITORY } = options;
  const result: ImagePruneResult = { removed: [], inUse: [], failed: [] };
  const images = await docker.listImages({ filters: { label: [IMAGE_INPUTS_LABEL] } });
  for (const image of images) {
    if (signal?.aborted) throw new AbortedError('pruning sandbox images was aborted', { cause: signal.reason });
    const tags = (image.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>');
    if (!tags.some((tag) => tag.startsWith(`${repository}:`))) continue;
    if (tags.some((tag) => keep.includes(tag))) continue;
    const name = tags[0] ?? image.Id.replace(/^sha256:/, '').slice(0, 12);
    try {
      // Removing by id with several tags needs force; removing each tag untags, and the last removes.
      if (tags.length === 0) await docker.getImage(image.Id).remove();
      else for (const tag of tags) await docker.getImage(tag).remove();
      result.removed.push(name);
    } catch (error) {
      const status = dockerStatusCode(error);
      if (status === 409) result.inUse.push(name);
      else if (status !== 404) result.failed.push({ image: name, error: errorMessage(error) });
    }
  }
  return result;
}
