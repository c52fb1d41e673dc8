/**
 * {@link ServiceNotices} across processes and machines over PostgreSQL `LISTEN`/`NOTIFY`: a run
 * queued through one API process wakes the workers on every machine, events a worker appends reach
 * the SSE streams of every API process, and a cancel asked of any API process reaches the worker
 * running the run at once (its lease renewal would see it too, within a third of the lease).
 *
 * Delivery inside this process is immediate and does not wait for the database; what comes back
 * from the database with this process's own origin is not delivered twice. Notices are hints: the
 * stored rows stay the truth, and every reader re-reads the store (the worker polls, SSE re-reads at
 * each heartbeat), so a notice lost while the connection is down only delays.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Client as ClientBase } from 'pg';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import { createServiceNotices } from './service-notices.js';
import type { ServiceNotice, ServiceNotices } from './service-types.js';

/** The channel every rlm process of one database listens on. */
export const NOTICE_CHANNEL = 'rlm_service_notices';

const Notice = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('run_queued'), runId: z.string(), teamId: z.string() }),
  z.object({ kind: z.literal('run_events'), runId: z.string(), lastSeq: z.number().int() }),
  z.object({ kind: z.literal('run_cancel'), runId: z.string() }),
]);
const Envelope = z.object({ origin: z.string(), notice: Notice });

export interface PostgresNotices extends ServiceNotices {
  /** Stops listening and closes the connection. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Connects a listening client to `databaseUrl` and answers once it listens.
 * @throws when the database cannot be reached (the store's own open reports that better; call this after it).
 */
export async function createPostgresNotices(options: { databaseUrl: string; logger: Logger }): Promise<PostgresNotices> {
  const { logger } = options;
  const { default: pg } = await import('pg');
  const origin = randomBytes(8).toString('hex');
  const local = createServiceNotices({ onError: (error) => logger.error({ err: error }, 'a notice listener failed') });
  let client: ClientBase | undefined;
  let closed = false;
  let reconnecting = false;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let backoffMs = 250;
  // NOTIFYs go out one at a time on the listening connection, in order.
  let sending: Promise<void> = Promise.resolve();

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: options.databaseUrl });
    next.on('notification', (message) => {
      if (message.channel !== NOTICE_CHANNEL || message.payload === undefined) return;
      let parsed: z.infer<typeof Envelope>;
      try {
        parsed = Envelope.parse(JSON.parse(message.payload));
      } catch (error) {
        logger.warn({ err: error }, 'ignored a malformed notice');
        return;
      }
      if (parsed.origin !== origin) local.publish(parsed.notice as ServiceNotice);
    });
    next.on('error', (error) => {
      logger.warn({ err: error }, `the notice connection failed (${errorMessage(error)}); reconnecting`);
      reconnect(next);
    });
    next.on('end', () => reconnect(next));
    try {
      await next.connect();
      await next.query(`LISTEN ${NOTICE_CHANNEL}`);
    } catch (error) {
      next.removeAllListeners();
      await next.end().catch(() => {});
      throw error;
    }
    client = next;
    backoffMs = 250;
  };

  /** After the connection `failed`: tries again, backing off from 0.25 s to 10 s, until connected or closed. */
  const reconnect = (failed: ClientBase): void => {
    if (closed || client !== failed || reconnecting) return;
    client = undefined;
    reconnecting = true;
    failed.removeAllListeners('notification');
    const attempt = (): void => {
      reconnectTimer = setTimeout(() => {
        connect().then(
          () => {
            reconnecting = false;
            if (closed) void client?.end().catch(() => {});
          },
          (error: unknown) => {
            backoffMs = Math.min(backoffMs * 2, 10_000);
            logger.warn({ err: error }, `reconnecting the notice connection failed; next try in ${backoffMs} ms`);
            if (!closed) attempt();
          },
        );
      }, backoffMs).unref();
    };
    attempt();
  };

  await connect();
  return {
    publish(notice) {
      local.publish(notice);
      const payload = JSON.stringify({ origin, notice });
      sending = sending.then(async () => {
        const current = client;
        if (closed || current === undefined) return;
        try {
          await current.query('SELECT pg_notify($1, $2)', [NOTICE_CHANNEL, payload]);
        } catch (error) {
          logger.warn({ err: error, notice: notice.kind }, 'could not send a notice to the other processes; they find the change by polling');
        }
      });
    },
    subscribe: (listener) => local.subscribe(listener),
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(reconnectTimer);
      await sending;
      const current = client;
      client = undefined;
      if (current) await current.end().catch(() => {});
    },
  };
}
