/**
 * Record ids and API tokens. Ids are `run_`, `team_` or `tok_` and 24 random hex characters (96
 * bits: unguessable, so a run id given to another team reveals nothing). A token is `rlm_` and 32
 * random bytes in base64url; the store keeps only its SHA-256 and its first characters.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Characters of a token kept to recognise it in a list (`rlm_` and 8 more). */
export const TOKEN_PREFIX_LENGTH = 12;

/** A new random id: `${kind}_` and 24 lowercase hex characters. */
export function newId(kind: 'run' | 'team' | 'tok'): string {
  return `${kind}_${randomBytes(12).toString('hex')}`;
}

/** A new API token: `rlm_` and 43 base64url characters (256 random bits). */
export function newToken(): string {
  return `rlm_${randomBytes(32).toString('base64url')}`;
}

/**
 * The SHA-256 of a token, hex: what the store keeps and looks tokens up by. A plain hash, not a
 * slow one, is right here: the token has 256 random bits, so there is nothing to brute-force.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Whether `token` can be a token at all (cheap, before hashing and a database lookup). */
export function looksLikeToken(token: string): boolean {
  return token.startsWith('rlm_') && token.length <= 200;
}
