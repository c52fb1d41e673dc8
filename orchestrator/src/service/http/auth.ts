/**
 * Bearer-token authentication of the `/v1` API. The token is looked up by its hash
 * (`ServiceStore.authenticate`); the team it belongs to rides on the request for the handlers.
 * A missing, malformed, unknown or revoked token is one answer — 401 `unauthorized` with
 * `WWW-Authenticate: Bearer` — and the token never appears in a message or a log line.
 */
import type { FastifyRequest } from 'fastify';
import { ServiceError, type ServiceStore, type TeamRecord } from '../service-types.js';

const teams = new WeakMap<FastifyRequest, TeamRecord>();

/** Longest token accepted for a lookup; ours are 47 characters, anything much longer is not one. */
const MAX_TOKEN_LENGTH = 512;

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  const token = match?.[1];
  return token !== undefined && token.length <= MAX_TOKEN_LENGTH ? token : undefined;
}

/** An `onRequest` hook: resolves the request's team or answers 401. */
export function authenticateRequest(store: ServiceStore): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const token = bearerToken(request.headers.authorization);
    if (token === undefined)
      throw new ServiceError('unauthorized', 'missing or malformed Authorization header; send "Authorization: Bearer <token>" (rlm serve tokens create)');
    const team = await store.authenticate(token);
    if (team === null) throw new ServiceError('unauthorized', 'invalid or revoked token');
    teams.set(request, team);
    request.log.debug({ team: team.name }, 'authenticated');
  };
}

/** The team of an authenticated request. @throws {ServiceError} `unauthorized` on a route that skipped authentication. */
export function teamOf(request: FastifyRequest): TeamRecord {
  const team = teams.get(request);
  if (!team) throw new ServiceError('unauthorized', 'this route needs "Authorization: Bearer <token>"');
  return team;
}
