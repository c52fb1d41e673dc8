/**
 * The last few KiB of what a sandbox container printed, kept in memory so an error can quote them:
 * containers remove themselves when they stop, taking `docker logs` with them.
 */
import { Writable } from 'node:stream';
import type Dockerode from 'dockerode';

export class OutputTail {
  #text = '';
  constructor(readonly limitChars: number) {}

  append(chunk: Buffer | string): void {
    this.#text += chunk.toString();
    if (this.#text.length > this.limitChars * 2) this.#text = this.#text.slice(-this.limitChars);
  }

  /** The last `limitChars` characters, trimmed. */
  get text(): string {
    return this.#text.slice(-this.limitChars).trim();
  }
}

/**
 * Attaches to the container's stdout and stderr (before it starts, so nothing is missed).
 * Resolves with the tail and a function that detaches.
 */
export async function captureContainerOutput(
  docker: Dockerode,
  container: Dockerode.Container,
  limitChars = 4096,
): Promise<{ tail: OutputTail; detach: () => void }> {
  const tail = new OutputTail(limitChars);
  const stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream & { destroy?: () => void };
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      tail.append(chunk);
      callback();
    },
  });
  docker.modem.demuxStream(stream, sink, sink);
  stream.on('error', () => {});
  return { tail, detach: () => stream.destroy?.() };
}
