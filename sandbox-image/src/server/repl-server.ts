/**
 * The sandbox end of the control channel: dials the host, says hello with its token, then serves
 * `execute`, `load_context` and `define_tools` with the REPL of the sandbox's one language, run in
 * a separate cell process ({@link CellProcessClient}: a JavaScript REPL, or a Python one whose
 * interpreter loads while the channel is dialed), and forwards the cells' sub-calls and tool calls
 * to the host. Cells cannot reach this process: not its memory, not its socket, not its inspector.
 * Resolves when the channel closes; the caller (main.ts) then exits the process.
 */
import {
  CloseCode,
  DefineTools,
  Execute,
  HandlerError,
  Hello,
  LoadContext,
  MAX_SANDBOX_INBOUND_FRAME_BYTES,
  PROTOCOL_VERSION,
  Subcall,
  ToolCall,
  connectionOverWebSocket,
  type CloseInfo,
  type Language,
  type RpcConnection,
} from '@rlm/shared';
import WebSocket from 'ws';
import { ContextOutOfMemoryError, ToolDefinitionError } from '../repl/errors.js';
import { CellProcessClient } from './cell-process-client.js';
import type { SpawnedCellProcess } from './cell-process-spawn.js';

export interface ReplServerOptions {
  /** Where the host listens: `ws+unix:///run/rlm/control.sock:/` in the container. */
  url: string;
  /** The per-sandbox secret the host generated (main.ts reads it from the token file). */
  token: string;
  /** Directory of the context files (the read-only mount). */
  contextDir: string;
  /** V8 heap cap of the cell worker in MiB (for Python, also the cap of the interpreter's memory). */
  heapLimitMb?: number;
  /**
   * The language of every cell of this sandbox; default `javascript`. A cell in another language
   * is answered with `unsupported_language`. Only a Python sandbox loads the Python interpreter.
   */
  language?: Language;
  /** Location of the bundled cell worker (tests pass their own build); default next to the cell process's bundle. */
  workerUrl?: URL;
  /** Location of the bundled cell process; default `cell-process.js` next to this bundle. */
  cellProcessUrl?: URL;
  /**
   * The first cell process, already started by `spawnCellProcess` with these options (main.ts
   * starts it before loading the rest of the server); absent, the server starts it.
   */
  spawnedCellProcess?: SpawnedCellProcess;
  /** Pyodide's directory and snapshot for a Python sandbox (tests pass node_modules/pyodide); default next to the bundle. */
  pyodideDir?: string;
  snapshotFile?: string;
  /** Give up dialing after this long, in milliseconds. */
  connectTimeoutMs?: number;
  /** Close when the host sends no ping for this long, in milliseconds; default 15 000 (the host pings every 5 s). */
  heartbeatTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * How long the server waits for the host's next ping before it closes the channel (and exits), in
 * milliseconds: three of the host's 5-second heartbeats.
 */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 15_000;

/** Serves one control connection; resolves with how it closed. */
export async function runReplServer(options: ReplServerOptions): Promise<CloseInfo> {
  const language = options.language ?? 'javascript';
  const replStarting = CellProcessClient.start(
    {
      language,
      contextDir: options.contextDir,
      onSubcall: async (params, { signal }) => {
        if (!connection) throw new Error('the control channel is not open');
        return connection.request(Subcall, params, { signal });
      },
      onToolCall: async (params, { signal }) => {
        if (!connection) throw new Error('the control channel is not open');
        return connection.request(ToolCall, params, { signal });
      },
      ...(options.heapLimitMb === undefined ? {} : { heapLimitMb: options.heapLimitMb }),
      ...(options.workerUrl === undefined ? {} : { workerUrl: options.workerUrl }),
      ...(options.cellProcessUrl === undefined ? {} : { cellProcessUrl: options.cellProcessUrl }),
      ...(options.pyodideDir === undefined ? {} : { pyodideDir: options.pyodideDir }),
      ...(options.snapshotFile === undefined ? {} : { snapshotFile: options.snapshotFile }),
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.spawnedCellProcess ? { spawned: options.spawnedCellProcess } : {}),
    },
  );
  // Starting the cell process and dialing happen together: both sit on the cold-start path.
  let connection: RpcConnection | undefined;
  const [dialed, started] = await Promise.allSettled([dial(options), replStarting]);
  if (dialed.status === 'rejected' || started.status === 'rejected') {
    if (started.status === 'fulfilled') await started.value.close();
    if (dialed.status === 'fulfilled') dialed.value.terminate();
    throw dialed.status === 'rejected' ? dialed.reason : (started as PromiseRejectedResult).reason;
  }
  const socket = dialed.value;
  const repl = started.value;
  try {
    connection = connectionOverWebSocket(socket, { name: 'sandbox', maxMessageBytes: MAX_SANDBOX_INBOUND_FRAME_BYTES });
    const conn = connection;
    conn.handle(Execute, (params, { signal }) => {
      if (params.language !== language) {
        throw new HandlerError(
          'unsupported_language',
          `this sandbox runs ${language} cells, not ${params.language}; create a sandbox with language: '${params.language}' for them`,
        );
      }
      return repl.execute(params, { signal });
    });
    conn.handle(LoadContext, async (params, { signal }) => {
      try {
        return await repl.loadContext(params, { signal });
      } catch (error) {
        // A code of its own, so the host can say the sandbox ran out of memory and which limit to raise.
        if (error instanceof ContextOutOfMemoryError) throw new HandlerError('out_of_memory', error.message);
        throw error;
      }
    });
    conn.handle(DefineTools, async (params, { signal }) => {
      try {
        return await repl.defineTools(params, { signal });
      } catch (error) {
        if (error instanceof ToolDefinitionError) throw new HandlerError('invalid_tools', error.message);
        throw error;
      }
    });

    const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    let heartbeat = setTimeout(onSilence, heartbeatTimeoutMs);
    function onSilence() {
      conn.close(CloseCode.goingAway, `no ping from the host for ${heartbeatTimeoutMs} ms`);
    }
    socket.on('ping', () => {
      clearTimeout(heartbeat);
      heartbeat = setTimeout(onSilence, heartbeatTimeoutMs);
    });
    conn.onClose(() => clearTimeout(heartbeat));
    options.signal?.addEventListener('abort', () => conn.close(CloseCode.goingAway, 'sandbox shutting down'), { once: true });

    await conn.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: options.token, runtime: { node: process.version, languages: [language] } });
    return await conn.closed;
  } finally {
    connection?.close();
    await repl.close();
  }
}

/** Connects to the host, retrying briefly: the socket should already exist, but a race costs nothing to absorb. */
async function dial(options: ReplServerOptions): Promise<WebSocket> {
  const deadline = Date.now() + (options.connectTimeoutMs ?? 10_000);
  let lastError: Error | undefined;
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted();
    try {
      return await new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(options.url, { maxPayload: MAX_SANDBOX_INBOUND_FRAME_BYTES, perMessageDeflate: false });
        socket.once('open', () => {
          socket.off('error', reject);
          resolve(socket);
        });
        socket.once('error', reject);
      });
    } catch (error) {
      lastError = error as Error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`could not reach the host at ${options.url}: ${lastError?.message ?? 'timed out'}`);
}
