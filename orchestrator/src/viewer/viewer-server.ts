/**
 * The trajectory viewer's HTTP server: the page (HTML, script, CSS) and a small JSON API over a
 * {@link RunDirectory}, on 127.0.0.1 only.
 *
 * GET /             the page
 * GET /viewer.js    its script (bundled from page/browser/ at build time); GET /viewer.css its styles
 * GET /api/runs     {@link RunListResponse}
 * GET /api/run?file=NAME   {@link RunResponse}; 400/403/404/413 with `{ error }` for a refused name
 * GET /report.html  with `report: true` (an evaluation's directory): the directory's report.html,
 *                   read at each request, under the report's own policy ({@link REPORT_CSP}: its
 *                   inline script and styles by hash, nothing else)
 *
 * Guards, though it only listens on loopback: requests whose Host is not this server's loopback
 * address are refused (a web page on another origin cannot reach it through DNS rebinding), the
 * page's Content-Security-Policy allows only its own script and styles, and the API reads only
 * `.jsonl` files inside the directory.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { errorCode, errorMessage, RlmError } from '../errors.js';
import { REPORT_CSP } from '../eval/report/report-page.js';
import { VIEWER_CSS, VIEWER_HTML } from './page/viewer-page.js';
import { RunFileError, type RunDirectory } from './run-directory.js';
import type { RunListResponse, RunResponse } from './viewed-run.js';

export const VIEWER_HOST = '127.0.0.1';

/**
 * The page's script as the build bundles it (scripts/viewer-bundle.mjs), in the package's
 * dist/viewer-assets/. Relative to this module, which sits two levels below the package root
 * both as source (src/viewer/) and bundled (dist/bundle/).
 */
export const VIEWER_SCRIPT_PATH = fileURLToPath(new URL('../../dist/viewer-assets/viewer.js', import.meta.url));

export interface ViewerServerOptions {
  directory: RunDirectory;
  /** A run (a path relative to the directory) the page opens first. */
  initialFile?: string | null;
  /** TCP port; 0 or absent picks a free one. */
  port?: number;
  /** The page's script; by default {@link VIEWER_SCRIPT_PATH}'s text (tests pass one bundled from source). */
  script?: string;
  /** Serve the directory's `report.html` (an evaluation's, `rlm eval`) as /report.html. */
  report?: boolean;
}

export interface ViewerServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and closes open connections. Safe to call twice. */
  close(): Promise<void>;
}

/** The port is taken by another process. */
export class PortInUseError extends RlmError {
  static override readonly brand: string = 'rlm.PortInUseError';
  override name = 'PortInUseError';
  constructor(
    readonly port: number,
    options?: ErrorOptions,
  ) {
    super(`port ${port} is in use; pick another with --port`, { ...options, kind: 'port_in_use' });
  }
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'x-frame-options': 'DENY',
} as const;

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * Starts the viewer.
 *
 * @throws {PortInUseError} the port is taken.
 * @throws {RlmError} the page's script is missing (not built), or listening failed for another
 *   reason (the message says why).
 */
export async function startViewerServer(options: ViewerServerOptions): Promise<ViewerServer> {
  const { directory } = options;
  const script = options.script ?? (await readViewerScript());
  const initial = options.initialFile ?? null;
  let port = options.port ?? 0;
  const allowedHosts = () => new Set([`${VIEWER_HOST}:${port}`, `localhost:${port}`]);

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendJson(response, 500, { error: errorMessage(error) });
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!allowedHosts().has(request.headers.host ?? '')) {
      sendText(response, 403, 'text/plain; charset=utf-8', 'forbidden host\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      sendText(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const url = new URL(request.url ?? '/', `http://${VIEWER_HOST}`);
    switch (url.pathname) {
      case '/':
      case '/index.html':
        sendText(response, 200, 'text/html; charset=utf-8', VIEWER_HTML, { 'content-security-policy': CSP });
        return;
      case '/viewer.js':
        sendText(response, 200, 'text/javascript; charset=utf-8', script);
        return;
      case '/report.html': {
        if (!options.report) break;
        let html: string;
        try {
          html = await readFile(path.join(directory.root, 'report.html'), 'utf8');
        } catch (error) {
          if (errorCode(error) !== 'ENOENT') throw error;
          sendText(response, 404, 'text/plain; charset=utf-8', 'no report.html in this directory yet: it is written when `rlm eval` ends\n');
          return;
        }
        sendText(response, 200, 'text/html; charset=utf-8', html, { 'content-security-policy': REPORT_CSP });
        return;
      }
      case '/viewer.css':
        sendText(response, 200, 'text/css; charset=utf-8', VIEWER_CSS);
        return;
      case '/api/runs': {
        const body: RunListResponse = { directory: directory.displayPath, runs: await directory.list(), initial };
        sendJson(response, 200, body);
        return;
      }
      case '/api/run': {
        const file = url.searchParams.get('file') ?? '';
        try {
          const body: RunResponse = { file, run: await directory.read(file) };
          sendJson(response, 200, body);
        } catch (error) {
          if (!(error instanceof RunFileError)) throw error;
          sendJson(response, error.statusCode, { error: error.message });
        }
        return;
      }
    }
    sendText(response, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE') reject(new PortInUseError(port, { cause: error }));
      else if (error.code === 'EACCES') reject(new RlmError(`port ${port} needs privileges; pick another with --port`, { cause: error }));
      else reject(new RlmError(`cannot listen on ${VIEWER_HOST}:${port}: ${error.code ?? error.message}`, { cause: error }));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, VIEWER_HOST);
  });
  port = (server.address() as { port: number }).port;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  return {
    url: `http://${VIEWER_HOST}:${port}/`,
    port,
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function readViewerScript(): Promise<string> {
  try {
    return await readFile(VIEWER_SCRIPT_PATH, 'utf8');
  } catch (error) {
    throw new RlmError(
      `the viewer's page script ${VIEWER_SCRIPT_PATH} cannot be read (${errorCode(error) ?? errorMessage(error)}): run \`pnpm build\` in the rlm repository, or reinstall the rlm package`,
      { cause: error },
    );
  }
}

function sendText(response: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  sendText(response, status, 'application/json; charset=utf-8', JSON.stringify(body));
}
