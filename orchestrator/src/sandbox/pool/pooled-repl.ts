/**
 * A run's REPL taken from a {@link SandboxPool}, as the engine holds it: the pooled sandbox, set up
 * for the run (sub-call handler, tools, context) after it was acquired, and given back — destroyed —
 * when the run closes it. Internal to the engine; users of the pool get a `PooledSandbox`.
 */
import type { ExecuteResult, LoadContextResult } from '@rlm/shared';
import type { ContextValue } from '../context-files.js';
import type { ExecuteOptions, Repl, ReplRequest, SubcallHandler } from '../repl.js';
import type { Sandbox } from '../sandbox.js';
import type { SandboxTool } from '../tools.js';
import { leaseTicket, reservePooledSandbox, type SandboxPool, type SandboxTicket } from './sandbox-pool.js';

export class PooledRepl implements Repl {
  readonly language: Repl['language'];
  readonly #sandbox: Sandbox;
  readonly #ticket: SandboxTicket;
  readonly #cellTimeoutMs: number;

  constructor(sandbox: Sandbox, ticket: SandboxTicket, cellTimeoutMs: number) {
    this.#sandbox = sandbox;
    this.#ticket = ticket;
    this.#cellTimeoutMs = cellTimeoutMs;
    this.language = sandbox.language;
  }

  /** The pool's admission this REPL holds: its run marks it while waiting for a child RLM. */
  get ticket(): SandboxTicket {
    return this.#ticket;
  }

  /** True once closed — by `close()`, or by the sandbox itself after an aborted call (its place in the pool is then given back too). */
  get isClosed(): boolean {
    if (this.#sandbox.isClosed && !this.#ticket.released) void this.#ticket.release();
    return this.#ticket.released;
  }

  execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    return this.#settled(this.#sandbox.execute(code, { ...options, timeoutMs: options.timeoutMs ?? this.#cellTimeoutMs }));
  }

  loadContext(value: ContextValue, options?: { variable?: string; signal?: AbortSignal }): Promise<LoadContextResult> {
    return this.#settled(this.#sandbox.loadContext(value, options));
  }

  defineTools(tools: Record<string, SandboxTool>, options?: { signal?: AbortSignal }): Promise<string[]> {
    return this.#settled(this.#sandbox.defineTools(tools, options));
  }

  setSubcallHandler(handler: SubcallHandler | undefined): void {
    this.#sandbox.setSubcallHandler(handler);
  }

  /** Destroys the sandbox and frees its place in the pool. Never throws; safe to call twice. */
  close(): Promise<void> {
    return this.#ticket.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A call that closed the sandbox (an aborted one does) gives its place in the pool back at once. */
  async #settled<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      if (this.#sandbox.isClosed) void this.#ticket.release();
      throw error;
    }
  }
}

/** The pool ticket a REPL holds, when it is a pooled one. */
export function poolTicketOf(repl: Repl | undefined): SandboxTicket | undefined {
  return repl instanceof PooledRepl ? repl.ticket : undefined;
}

/**
 * A ready REPL from `pool` for `request`: the ticket given (a child RLM's, reserved when its
 * parent's call was granted) or one reserved now at depth 0 (a root run or a session, waiting as
 * long as `request.signal` allows), leased, then set up like `Sandbox.create` sets up a new
 * sandbox: the sub-call handler, the tools, the context. Whatever fails, the ticket is released.
 *
 * @throws what {@link SandboxPool.acquire} throws, and what setting the sandbox up throws.
 */
export async function openPooledRepl(
  pool: SandboxPool,
  request: ReplRequest,
  options: { ticket?: SandboxTicket; onLeased?: (ticket: SandboxTicket) => void } = {},
): Promise<PooledRepl> {
  const signal = request.signal;
  const ticket = options.ticket ?? (await reservePooledSandbox(pool, { language: request.language, depth: 0, ...(signal ? { signal } : {}) }));
  try {
    const sandbox = await leaseTicket(ticket, signal);
    options.onLeased?.(ticket);
    const repl = new PooledRepl(sandbox, ticket, request.cellTimeoutMs);
    repl.setSubcallHandler(request.onSubcall);
    if (request.tools && Object.keys(request.tools).length > 0) await repl.defineTools(request.tools, signal ? { signal } : {});
    if (request.context !== undefined) await repl.loadContext(request.context, signal ? { signal } : {});
    return repl;
  } catch (error) {
    await ticket.release();
    throw error;
  }
}
