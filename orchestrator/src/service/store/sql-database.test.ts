import { describe, expect, it } from 'vitest';
import { isUniqueViolation, lockRows, placeholders, toSqliteStatement } from './sql-database.js';

describe('toSqliteStatement', () => {
  it('turns every $N into an anonymous ? and says which parameter each one takes', () => {
    expect(toSqliteStatement('SELECT $2 AS b, $1 AS a, $12 AS l WHERE x = $1')).toEqual({
      sql: 'SELECT ? AS b, ? AS a, ? AS l WHERE x = ?',
      order: [1, 0, 11, 0],
    });
  });

  it('leaves quoted strings, quoted identifiers and comments alone', () => {
    const sql = `SELECT '$1', "col$2", 'it''s $3', $4 -- costs $5, isn't it\nFROM t WHERE a = $6`;
    expect(toSqliteStatement(sql)).toEqual({ sql: `SELECT '$1', "col$2", 'it''s $3', ? -- costs $5, isn't it\nFROM t WHERE a = ?`, order: [3, 5] });
  });

  it('leaves a $ that is not followed by a digit', () => {
    expect(toSqliteStatement('SELECT $a, $ FROM t')).toEqual({ sql: 'SELECT $a, $ FROM t', order: [] });
  });
});

describe('dialect helpers', () => {
  it('locks rows with FOR UPDATE on PostgreSQL and with nothing on SQLite', () => {
    expect(lockRows('postgres')).toBe(' FOR UPDATE');
    expect(lockRows('postgres', { skipLocked: true })).toBe(' FOR UPDATE SKIP LOCKED');
    expect(lockRows('sqlite', { skipLocked: true })).toBe('');
  });

  it('recognises unique violations of both databases', () => {
    expect(isUniqueViolation({ code: '23505' })).toBe(true);
    expect(isUniqueViolation({ errcode: 2067 })).toBe(true);
    expect(isUniqueViolation({ errcode: 1555 })).toBe(true);
    expect(isUniqueViolation({ code: '23503' })).toBe(false);
    expect(isUniqueViolation(new Error('x'))).toBe(false);
  });

  it('writes the placeholders of an IN list from a given number', () => {
    expect(placeholders(3, 3)).toBe('$3, $4, $5');
    expect(placeholders(1, 0)).toBe('');
  });
});
