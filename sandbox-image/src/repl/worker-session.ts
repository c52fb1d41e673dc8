/**
 * One cell worker as seen from the main thread: starts it, sends it requests, answers its
 * sub-calls through `onSubcall` and its tool calls through `onToolCall`, and reports how it ended.
 * A session never restarts; when its worker is gone, `JavaScriptRepl` starts a new one.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { SubcallParams, SubcallResult, ToolCallParams, ToolCallResult } from '@rlm/shared';
import { ReplStartError } from './errors.js';
import { INTERRUPT_BUFFER_BYTES, interruptCell } from './python/interrupt.js';
import type { FromWorker, HostCallReply, HostCallRequest, PythonWorkerSettings, ToWorker, WorkerInit } from './worker-messages.js';

export interface WorkerSessionOptions {
  readonly workerUrl: URL;
  readonly contextDir: string;
  readonly heapLimitMb: number | undefined;
  /** Settings of a Python worker; absent for JavaScript. */
  readonly python?: PythonWorkerSettings | undefined;
  readonly onSubcall: (params: SubcallParams, options: { signal: AbortSignal }) => Promise<SubcallResult>;
  readonly onToolCall: (params: ToolCallParams, options: { signal: AbortSignal }) => Promise<ToolCallResult>;
}

export interface WorkerExit {
  readonly code: number;
  /** The last error the worker reported, e.g. `ERR_WORKER_OUT_OF_MEMORY`. */
  readonly error: (Error & { code?: string }) | undefined;
}

type Reply = Exclude<FromWorker, { type: 'ready' }>;
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class WorkerSession {
  /** Resolves once the worker thread has ended, for whatever reason. */
  readonly exited: Promise<WorkerExit>;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #signal: Int32Array;
  readonly #interrupt: Int32Array;
  readonly #options: WorkerSessionOptions;
  readonly #pending = new Map<number, (reply: Reply) => void>();
  /** Host calls (sub-calls, tool calls) being answered. */
  readonly #hostCalls = new Set<AbortController>();
  readonly #ready: Promise<void>;
  #nextId = 1;
  #ended = false;

  private constructor(options: WorkerSessionOptions) {
    this.#options = options;
    const { port1, port2 } = new MessageChannel();
    const shared = new SharedArrayBuffer(4);
    this.#port = port1;
    this.#signal = new Int32Array(shared);
    const interrupt = new SharedArrayBuffer(INTERRUPT_BUFFER_BYTES);
    this.#interrupt = new Int32Array(interrupt);
    const workerData: WorkerInit = {
      contextDir: options.contextDir,
      hostCallPort: port2,
      hostCallSignal: shared,
      interruptSignal: interrupt,
      ...(options.python ? { python: options.python } : {}),
    };
    this.#worker = new Worker(options.workerUrl, {
      workerData,
      transferList: [port2],
      // The parent's flags (--input-type, --inspect…) are not the cell worker's business.
      execArgv: [],
      ...(options.heapLimitMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.heapLimitMb } }),
    });
    let lastError: WorkerExit['error'];
    this.#worker.on('error', (error: Error & { code?: string }) => {
      lastError = error;
    });
    this.exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        this.#ended = true;
        this.abortHostCalls();
        this.#port.close();
        resolve({ code, error: lastError });
      });
    });
    this.#ready = new Promise((resolve) => {
      this.#worker.on('message', (message: FromWorker) => {
        if (message.type === 'ready') resolve();
        else this.#pending.get(message.id)?.(message);
      });
    });
    this.#port.on('message', (request: HostCallRequest) => void this.#answerHostCall(request));
  }

  /** Starts a worker and waits until it is ready for requests. */
  static async start(options: WorkerSessionOptions, signal?: AbortSignal): Promise<WorkerSession> {
    signal?.throwIfAborted();
    const session = new WorkerSession(options);
    const aborted = abortPromise(signal);
    try {
      await Promise.race([
        session.#ready,
        aborted.promise,
        session.exited.then(({ code, error }) => {
          throw new ReplStartError(
            `the REPL worker (${options.workerUrl.href}) exited with code ${code} before it was ready${error ? `: ${error.message}` : ''}`,
            { cause: error },
          );
        }),
      ]);
    } catch (error) {
      session.terminate();
      throw error;
    } finally {
      aborted.dispose();
    }
    return session;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Sends a request; the promise settles only with the worker's answer, so race it against `exited`. */
  request<T extends WithoutId<ToWorker>>(message: T): Promise<Reply> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, (reply) => {
        this.#pending.delete(id);
        resolve(reply);
      });
      this.#worker.postMessage({ ...message, id });
    });
  }

  /** Asks the worker's Python interpreter to stop cell `cellNumber` (a KeyboardInterrupt at its next bytecode). */
  interrupt(cellNumber: number): void {
    interruptCell(this.#interrupt, cellNumber);
  }

  /** Aborts the host-side work of every sub-call and tool call still running (their cell is over). */
  abortHostCalls(): void {
    for (const controller of this.#hostCalls) controller.abort(new Error('the cell that made this call is over'));
    this.#hostCalls.clear();
  }

  /** Stops the worker, even one stuck in a synchronous loop. Safe to call more than once. */
  terminate(): void {
    this.abortHostCalls();
    this.#worker.terminate().catch(() => {
      // The worker is gone either way.
    });
  }

  async #answerHostCall(request: HostCallRequest): Promise<void> {
    const controller = new AbortController();
    this.#hostCalls.add(controller);
    let reply: HostCallReply;
    try {
      reply = { id: request.id, result: await this.#ask(request, controller.signal) };
    } catch (error) {
      reply = { id: request.id, error: error instanceof Error ? error.message : String(error) };
    } finally {
      this.#hostCalls.delete(controller);
    }
    if (this.#ended || controller.signal.aborted) return;
    this.#port.postMessage(reply);
    Atomics.add(this.#signal, 0, 1);
    Atomics.notify(this.#signal, 0);
  }

  /** Validates what the worker asks, asks the host, and validates the answer. */
  async #ask(request: HostCallRequest, signal: AbortSignal): Promise<SubcallResult | ToolCallResult> {
    switch (request.kind) {
      case 'subcall': {
        const params = SubcallParams.safeParse(request.params);
        if (!params.success) throw new Error(`invalid sub-call: ${params.error.message}`);
        const result = SubcallResult.safeParse(await this.#options.onSubcall(params.data, { signal }));
        if (!result.success) throw new Error(`the host answered the sub-call with an invalid result: ${result.error.message}`);
        return result.data;
      }
      case 'tool': {
        const params = ToolCallParams.safeParse(request.params);
        if (!params.success) throw new Error(`invalid tool call: ${params.error.message}`);
        const result = ToolCallResult.safeParse(await this.#options.onToolCall(params.data, { signal }));
        if (!result.success) throw new Error(`the host answered the tool call with an invalid result: ${result.error.message}`);
        return result.data;
      }
      default:
        throw new Error(`unknown host call ${JSON.stringify((request as { kind?: unknown }).kind)}`);
    }
  }
}

/** A promise that rejects with the signal's reason once it aborts; `dispose` removes the listener. */
export function abortPromise(signal: AbortSignal | undefined): { promise: Promise<never>; dispose(): void } {
  if (!signal) return { promise: new Promise<never>(() => {}), dispose() {} };
  let listener: (() => void) | undefined;
  const promise = new Promise<never>((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    listener = () => reject(signal.reason);
    signal.addEventListener('abort', listener, { once: true });
  });
  promise.catch(() => {});
  return {
    promise,
    dispose: () => {
      if (listener) signal.removeEventListener('abort', listener);
    },
  };
}
