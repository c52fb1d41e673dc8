/**
 * One cell worker as seen from the main thread: starts it, sends it requests, answers its
 * sub-calls through `onSubcall` and its tool calls through `onToolCall`, and reports how it ended.
 * A session never restarts; when its worker is gone, `JavaScriptRepl` starts a new one.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { SubcallParams, SubcallResult, ToolCallParams, ToolCallResult } from '@rlm/shared';
import { errorMessage } from '../to-error.js';
import { ReplStartError } from './errors.js';
import { INTERRUPT_BUFFER_BYTES, interruptCell } from './python/interrupt.js';
import type { FromWorker, HostCallReply, HostCallRequest, PythonWorkerSettings, ToWorker, WorkerInit } from './worker-messages.js';

export interface WorkerSessionOptions {
  readonly workerUrl: URL;
  readonly contextDir: string;
  /** V8 old-generation cap of the worker in MiB; also sets the young generation's (see {@link youngGenerationMb}). */
  readonly heapLimitMb: number | undefined;
  /**
   * Most memory the worker may hold, in MiB: its V8 heap in use plus its external memory
   * (ArrayBuffers, Buffers, typed arrays, a WebAssembly interpreter's memory), which V8's heap
   * limit does not count. Checked every {@link MEMORY_CHECK_INTERVAL_MS}; past it the worker is
   * terminated and its exit says so (`WorkerExit.memory`). Absent: not checked.
   */
  readonly memoryLimitMb?: number | undefined;
  /** Settings of a Python worker; absent for JavaScript. */
  readonly python?: PythonWorkerSettings | undefined;
  readonly onSubcall: (params: SubcallParams, options: { signal: AbortSignal }) => Promise<SubcallResult>;
  readonly onToolCall: (params: ToolCallParams, options: { signal: AbortSignal }) => Promise<ToolCallResult>;
}

export interface WorkerExit {
  readonly code: number;
  /** The last error the worker reported, e.g. `ERR_WORKER_OUT_OF_MEMORY`. */
  readonly error: (Error & { code?: string }) | undefined;
  /** Set when the session terminated the worker for holding more than `memoryLimitMb`. */
  readonly memory?: { readonly usedMb: number; readonly limitMb: number } | undefined;
}

/** How often, in milliseconds, a session with a `memoryLimitMb` asks its worker how much memory it holds. */
export const MEMORY_CHECK_INTERVAL_MS = 25;

const MIB = 1024 * 1024;

/**
 * The young generation's cap of a worker whose old generation is capped at `heapLimitMb`: an eighth
 * of it, from 8 to 32 MiB. Without it V8 gives every worker a young generation of up to 192 MiB on
 * top of the cap, and a scavenge that promotes more than the 16 MiB of leeway Node gives a worker
 * at its heap limit aborts the whole process ("Reached heap limit") instead of ending the worker
 * with ERR_WORKER_OUT_OF_MEMORY. V8 reserves about 1.5 times this on top of `heapLimitMb`.
 */
export function youngGenerationMb(heapLimitMb: number): number {
  return Math.min(32, Math.max(8, Math.floor(heapLimitMb / 8)));
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
  #memoryCheck: NodeJS.Timeout | undefined;
  #memoryExceeded: WorkerExit['memory'];

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
      ...(options.heapLimitMb === undefined
        ? {}
        : { resourceLimits: { maxOldGenerationSizeMb: options.heapLimitMb, maxYoungGenerationSizeMb: youngGenerationMb(options.heapLimitMb) } }),
    });
    let lastError: WorkerExit['error'];
    this.#worker.on('error', (error: Error & { code?: string }) => {
      lastError = error;
    });
    this.exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        this.#ended = true;
        clearInterval(this.#memoryCheck);
        this.abortHostCalls();
        this.#port.close();
        resolve({ code, error: lastError, memory: this.#memoryExceeded });
      });
    });
    // The worker runs the cell's code, which can post anything on both channels: a message that is
    // not one of ours is dropped (a throw here would end this whole process).
    this.#ready = new Promise((resolve) => {
      this.#worker.on('message', (message: unknown) => {
        if (!isObject(message) || typeof message.type !== 'string') return;
        if (message.type === 'ready') resolve();
        else if (typeof message.id === 'number') this.#pending.get(message.id)?.(message as Reply);
      });
    });
    this.#port.on('message', (request: unknown) => {
      if (!isObject(request) || !Number.isSafeInteger(request.id) || typeof request.kind !== 'string') return;
      this.#answerHostCall(request as HostCallRequest).catch(() => {
        // Answering failed (the port closed under it): the cell that asked is over.
      });
    });
    if (options.memoryLimitMb !== undefined) this.#watchMemory(options.memoryLimitMb);
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
    clearInterval(this.#memoryCheck);
    this.abortHostCalls();
    this.#worker.terminate().catch(() => {
      // The worker is gone either way.
    });
  }

  /**
   * Asks the worker's isolate for its heap statistics every {@link MEMORY_CHECK_INTERVAL_MS} (served
   * between two of its instructions, even in a synchronous loop) and terminates it when its heap in
   * use plus its external memory pass `limitMb`. The timer keeps no process alive.
   */
  #watchMemory(limitMb: number): void {
    let asking = false;
    this.#memoryCheck = setInterval(() => {
      if (asking || this.#ended) return;
      asking = true;
      this.#worker.getHeapStatistics().then(
        (stats) => {
          asking = false;
          const usedMb = (stats.used_heap_size + (stats.external_memory ?? 0)) / MIB;
          if (usedMb <= limitMb || this.#ended || this.#memoryExceeded) return;
          this.#memoryExceeded = { usedMb: Math.round(usedMb), limitMb };
          this.terminate();
        },
        () => {
          // The worker is ending; its exit is reported on its own.
          asking = false;
        },
      );
    }, MEMORY_CHECK_INTERVAL_MS);
    this.#memoryCheck.unref();
  }

  async #answerHostCall(request: HostCallRequest): Promise<void> {
    const controller = new AbortController();
    this.#hostCalls.add(controller);
    let reply: HostCallReply;
    try {
      reply = { id: request.id, result: await this.#ask(request, controller.signal) };
    } catch (error) {
      reply = { id: request.id, error: errorMessage(error) };
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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
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
