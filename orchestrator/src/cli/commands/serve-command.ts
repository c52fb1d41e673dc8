/**
 * `rlm serve` and its management commands (`serve teams create|list|update`, `serve tokens
 * create|list|revoke`, `serve runs prune`). `serve` resolves its settings (flags > environment >
 * the config file's `serve:` section > defaults; models, limits and sandbox settings as `rlm` reads them), opens the
 * database, connects to Docker, makes sure the sandbox image exists, starts the warm pool and the
 * service (../../service/rlm-service.ts), and on SIGTERM or Ctrl-C (the CLI's signal) drains it.
 */
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { pino } from 'pino';
import type { RlmLimits } from '../../engine/run-budget.js';
import { createRunEngine, servedModels } from '../../service/run-engine.js';
import { createPostgresNotices, type PostgresNotices } from '../../service/pg-notices.js';
import { type ServeRole, startRlmService } from '../../service/rlm-service.js';
import { redactDatabaseUrl } from '../../service/store/postgres-database.js';
import { openServiceStore } from '../../service/store/service-store.js';
import {
  type RunLimits,
  type ServedModel,
  type ServeSettings,
  ServiceError,
  type ServiceStore,
  type TeamRecord,
  type TeamUpdate,
  type TokenRecord,
} from '../../service/service-types.js';
import { createSandboxPool, type SandboxPool } from '../../sandbox/pool/sandbox-pool.js';
import { createDockerClient, pingDocker } from '../../sandbox/docker-client.js';
import { ensureSandboxImage } from '../../sandbox/image/ensure-sandbox-image.js';
import { ExitCode, UsageError, type CliIo } from '../cli-io.js';
import type { LimitsConfig, ServeConfig } from '../config/config-schema.js';
import { createModelRoles } from '../config/model-roles.js';
import { limitsOf, type ResolvedSettings, type RoleSpec, resolveSettings, sandboxOptionsOf } from '../config/settings.js';
import { type BackendName, DEFAULT_MODELS } from '../../models/create-backend.js';
import type { CommandName } from '../flags/cli-flags.js';
import { helpText } from '../flags/help-text.js';
import { integer, number } from '../flags/number-flags.js';
import { helpHint, parseCommandFlags } from '../flags/parse-flags.js';
import { formatCost } from '../output/format.js';

export type ServeCommandName = Extract<CommandName, `serve${string}`>;

/** The embedded database's directory when nothing says otherwise. */
export const DEFAULT_DATA_DIR = 'rlm-data';
export const DEFAULT_SERVE_PORT = 8080;
const DAY_MS = 24 * 60 * 60 * 1000;

export async function serveCommand(command: ServeCommandName, argv: string[], io: CliIo): Promise<number> {
  switch (command) {
    case 'serve':
      return await serve(argv, io);
    case 'serve teams':
    case 'serve tokens':
    case 'serve runs':
      // `rlm serve teams` alone: its help, as a usage error.
      io.stderr(helpText(command));
      return ExitCode.usage;
    case 'serve teams create':
      return await teamsCreate(argv, io);
    case 'serve teams list':
      return await teamsList(argv, io);
    case 'serve teams update':
      return await teamsUpdate(argv, io);
    case 'serve tokens create':
      return await tokensCreate(argv, io);
    case 'serve tokens list':
      return await tokensList(argv, io);
    case 'serve tokens revoke':
      return await tokensRevoke(argv, io);
    case 'serve runs prune':
      return await runsPrune(argv, io);
  }
}

// ---------------------------------------------------------------------------------------------
// rlm serve

async function serve(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'serve');
  if (positionals.length > 0) throw new UsageError(`rlm serve takes no arguments, got: ${positionals.join(' ')}`, { hint: helpHint('serve') });
  const cwd = io.cwd ?? process.cwd();
  const role = roleOf(values.role ?? (io.env.RLM_SERVE_ROLE || undefined));
  const resolved = await resolveSettings({ flags: values.config === undefined ? {} : { config: values.config }, env: io.env, cwd });
  const serveConfig: ServeConfig = resolved.config.serve ?? {};
  const maxSandboxes = positiveInteger(values['max-sandboxes'], '--max-sandboxes') ?? serveConfig.maxSandboxes ?? 8;
  const warmJs = nonNegativeInteger(values.warm, '--warm') ?? serveConfig.warm?.javascript ?? Math.min(2, maxSandboxes);
  const warmPy = serveConfig.warm?.python ?? 0;
  if (warmJs + warmPy > maxSandboxes) {
    throw new UsageError(
      `--warm ${warmJs}${warmPy ? ` (+ ${warmPy} Python)` : ''} is more than --max-sandboxes ${maxSandboxes}; keep fewer warm or allow more sandboxes`,
    );
  }
  // The API role calls no model: it names the served models without creating backends (it has no provider keys).
  const roles = role === 'api' ? undefined : createModelRoles(resolved);
  const engineLimits: Partial<RlmLimits> = limitsOf(resolved.config);
  const settings: ServeSettings = {
    host: values.host ?? io.env.RLM_SERVE_HOST ?? serveConfig.host ?? '127.0.0.1',
    port: port(values.port ?? io.env.RLM_SERVE_PORT) ?? serveConfig.port ?? DEFAULT_SERVE_PORT,
    maxBodyBytes: Math.round((positiveNumber(values['max-body-mb'], '--max-body-mb') ?? serveConfig.maxBodyMb ?? 64) * 1024 * 1024),
    graceSeconds: nonNegativeNumber(values['grace-seconds'], '--grace-seconds') ?? serveConfig.graceSeconds ?? 30,
    models: roles ? servedModels(roles) : servedModelsOf(resolved),
    defaultLanguage: resolved.config.language ?? 'javascript',
    limits: runLimitsOf(resolved.config.limits),
    maxRunningRuns: positiveInteger(values['max-running'], '--max-running') ?? serveConfig.maxRunning ?? maxSandboxes,
    leaseMs: Math.round((positiveNumber(values['lease-seconds'], '--lease-seconds') ?? serveConfig.leaseSeconds ?? 30) * 1000),
    // A worker among others gives a dead worker's runs to another; one server alone fails them.
    retryInterrupted: serveConfig.retryInterrupted ?? role === 'worker',
    maxAttempts: positiveInteger(values['max-attempts'], '--max-attempts') ?? serveConfig.maxAttempts ?? 2,
  };
  const retainDays = positiveNumber(values['retain-days'] ?? (io.env.RLM_SERVE_RETAIN_DAYS || undefined), '--retain-days') ?? serveConfig.retainDays;
  if (retainDays !== undefined) settings.retainMs = Math.round(retainDays * DAY_MS);
  const databaseUrl = values.database ?? (io.env.DATABASE_URL || undefined);
  if (role !== 'all' && databaseUrl === undefined)
    throw new UsageError(
      `--role ${role} needs PostgreSQL: give --database postgres://… (or DATABASE_URL); the embedded database serves one process on one machine`,
      {
        hint: helpHint('serve'),
      },
    );

  const logger = pino({ base: { service: 'rlm', role } }, { write: (line: string) => io.stdout(line) });
  const workerId = values['worker-id'] ?? `${os.hostname()}-${process.pid}`;
  // The API role runs no sandbox: it needs no Docker engine.
  let docker: Docker | undefined;
  let pool: SandboxPool | undefined;
  if (role !== 'api') {
    docker = createDockerClient({ env: io.env });
    await pingDocker(docker, { signal: io.signal });
  }
  const store = await openStore(values, io, 'serve', resolved.config.serve?.dataDir);
  let notices: PostgresNotices | undefined;
  let service: Awaited<ReturnType<typeof startRlmService>>;
  try {
    if (docker) {
      const sandbox = sandboxOptionsOf(resolved.config);
      let image = sandbox.image;
      if (image === undefined) {
        const ensured = await ensureSandboxImage({ docker, signal: io.signal, onProgress: () => {} });
        image = ensured.tag;
        if (ensured.built) logger.info({ image, durationMs: Math.round(ensured.durationMs) }, 'built the sandbox image');
      }
      pool = createSandboxPool({ ...sandbox, docker, image, maxSandboxes, warm: { javascript: warmJs, python: warmPy } });
    }
    if (store.kind === 'postgres' && databaseUrl !== undefined) notices = await createPostgresNotices({ databaseUrl, logger });
    const engine = pool && roles ? createRunEngine({ roles, limits: engineLimits, ...(resolved.prices ? { prices: resolved.prices } : {}), pool }) : undefined;
    service = await startRlmService({
      settings,
      role,
      store,
      workerId,
      ...(engine ? { engine } : {}),
      ...(pool ? { pool } : {}),
      ...(docker ? { docker } : {}),
      ...(notices ? { notices } : {}),
      logger,
    });
  } catch (error) {
    await notices?.close();
    await pool?.close();
    await store.close();
    throw error;
  }
  const database = describeDatabase(store, values, io);
  if (role === 'worker') io.stderr(`rlm serve: worker ${workerId} ready (${settings.maxRunningRuns} runs at once, ${maxSandboxes} sandboxes)\n`);
  logger.info(
    {
      url: service.url,
      database,
      models: settings.models.map((m) => m.id),
      maxSandboxes,
      maxRunningRuns: settings.maxRunningRuns,
    },
    `listening on ${service.url}`,
  );
  io.stderr(`rlm serve: listening on ${service.url} (database: ${database}; Ctrl-C or SIGTERM drains and stops)\n`);
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    else io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  io.stderr(`rlm serve: draining (running runs get ${settings.graceSeconds} s to finish)\n`);
  await service.drain(settings.graceSeconds * 1000);
  io.stderr('rlm serve: stopped; every sandbox removed\n');
  return ExitCode.ok;
}

/** The served models from the settings alone: each role's model id, or its backend's default. */
function servedModelsOf(resolved: ResolvedSettings): ServedModel[] {
  const modelOf = (spec: RoleSpec) => spec.model ?? DEFAULT_MODELS[spec.backend as BackendName] ?? spec.backend;
  return [
    { id: 'rlm', name: null, providerModel: modelOf(resolved.root) },
    ...Object.entries(resolved.models).map(([name, spec]) => ({ id: `rlm:${name}`, name, providerModel: spec.model })),
  ];
}

function roleOf(value: string | undefined): ServeRole {
  if (value === undefined) return 'all';
  if (value === 'all' || value === 'api' || value === 'worker') return value;
  throw new UsageError(`--role must be all, api or worker, got "${value}"`, { hint: helpHint('serve') });
}

/** The server's `limits:` as a run's limits (the defaults of a run, and the ceilings of what it may ask). */
function runLimitsOf(limits: LimitsConfig = {}): RunLimits {
  const out: RunLimits = {};
  if (limits.maxIterations !== undefined) out.maxIterations = limits.maxIterations;
  if (limits.maxDepth !== undefined) out.maxDepth = limits.maxDepth;
  if (limits.timeoutSeconds !== undefined) out.timeoutSeconds = limits.timeoutSeconds;
  if (limits.cellTimeoutSeconds !== undefined) out.cellTimeoutSeconds = limits.cellTimeoutSeconds;
  if (limits.maxCostUsd !== undefined) out.maxCostUsd = limits.maxCostUsd;
  if (limits.maxTokens !== undefined) out.maxTokens = limits.maxTokens;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The database

type DatabaseFlags = { database?: string; 'data-dir'?: string };

/**
 * Opens the database the flags and environment name. `serve` holds the embedded database's
 * directory (a second server on it is refused); `admin` (teams, tokens) opens it beside a running
 * server.
 */
async function openStore(values: DatabaseFlags, io: CliIo, access: 'serve' | 'admin', configDataDir?: string): Promise<ServiceStore> {
  const url = values.database ?? (io.env.DATABASE_URL || undefined);
  if (url !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(url))
      throw new UsageError(`--database must be a PostgreSQL URL (postgres://user:password@host:5432/db), got "${redactDatabaseUrl(url)}"`);
    return await openServiceStore({ databaseUrl: url, signal: io.signal });
  }
  return await openServiceStore({ dataDir: dataDirOf(values, io, configDataDir), access, signal: io.signal });
}

function dataDirOf(values: DatabaseFlags, io: CliIo, configDataDir?: string): string {
  return path.resolve(io.cwd ?? process.cwd(), values['data-dir'] ?? (io.env.RLM_DATA_DIR || undefined) ?? configDataDir ?? DEFAULT_DATA_DIR);
}

function describeDatabase(store: ServiceStore, values: DatabaseFlags, io: CliIo): string {
  if (store.kind === 'postgres') return `PostgreSQL ${redactDatabaseUrl(values.database ?? io.env.DATABASE_URL ?? '')}`;
  return `embedded, ${dataDirOf(values, io)}`;
}

// ---------------------------------------------------------------------------------------------
// Teams and tokens

async function teamsCreate(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'serve teams create');
  const hint = helpHint('serve teams create');
  if (positionals.length !== 1)
    throw new UsageError(positionals.length === 0 ? 'no team name: rlm serve teams create NAME' : `give one team name, got ${positionals.length}`, { hint });
  const name = positionals[0] as string;
  const models = values.models === undefined ? null : modelList(values.models);
  await using store = await openStore(values, io, 'admin');
  const team = await store.createTeam({
    name,
    budgetUsd: positiveNumber(values['budget-usd'], '--budget-usd') ?? null,
    ...optional('maxConcurrentRuns', positiveInteger(values['max-concurrent-runs'], '--max-concurrent-runs')),
    ...optional('maxQueued', positiveInteger(values['max-queued'], '--max-queued')),
    models,
  });
  if (values.json) io.stdout(`${JSON.stringify(teamJson(team, 0))}\n`);
  else io.stdout(`created team ${team.name} (${describeTeam(team)})\nnext: rlm serve tokens create --team ${team.name}\n`);
  return ExitCode.ok;
}

async function teamsList(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandFlags(argv, 'serve teams list');
  await using store = await openStore(values, io, 'admin');
  const teams = await store.listTeams();
  const spends = await Promise.all(teams.map((team) => store.teamSpendUsd(team.id)));
  if (values.json) {
    io.stdout(`${JSON.stringify(teams.map((team, i) => teamJson(team, spends[i] ?? 0)))}\n`);
    return ExitCode.ok;
  }
  if (teams.length === 0) {
    io.stdout('no teams yet: rlm serve teams create NAME\n');
    return ExitCode.ok;
  }
  for (const [i, team] of teams.entries()) io.stdout(`${team.name}  ${describeTeam(team)}, spent ${formatCost(spends[i] ?? 0)}\n`);
  return ExitCode.ok;
}

async function teamsUpdate(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'serve teams update');
  const hint = helpHint('serve teams update');
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0
        ? 'no team name: rlm serve teams update NAME --budget-usd USD (or another option)'
        : `give one team name, got ${positionals.length}: ${positionals.join(' ')}`,
      { hint },
    );
  const name = positionals[0] as string;
  if (values['budget-usd'] !== undefined && values['no-budget'])
    throw new UsageError('--budget-usd and --no-budget contradict each other: give --budget-usd USD for a new budget, or --no-budget for none', { hint });
  if (values.models !== undefined && values['all-models'])
    throw new UsageError('--models and --all-models contradict each other: give --models LIST for some models, or --all-models for every one', { hint });
  const update: TeamUpdate = withHint(hint, () => ({
    ...(values['no-budget'] ? { budgetUsd: null } : optional('budgetUsd', positiveNumber(values['budget-usd'], '--budget-usd'))),
    ...optional('maxConcurrentRuns', positiveInteger(values['max-concurrent-runs'], '--max-concurrent-runs')),
    ...optional('maxQueued', positiveInteger(values['max-queued'], '--max-queued')),
    ...(values['all-models'] ? { models: null } : optional('models', values.models === undefined ? undefined : modelList(values.models))),
  }));
  if (Object.keys(update).length === 0)
    throw new UsageError(
      `nothing to change in team ${name}: give --budget-usd USD or --no-budget, --max-concurrent-runs N, --max-queued N, --models LIST or --all-models`,
      { hint },
    );
  await using store = await openStore(values, io, 'admin');
  // Read before, for the report of what changed; the update itself is one statement in the store.
  const before = await store.teamByName(name);
  const team = await store.updateTeam(name, update);
  if (values.json) io.stdout(`${JSON.stringify(teamJson(team, await store.teamSpendUsd(team.id)))}\n`);
  else io.stdout(`updated team ${team.name}: ${describeChanges(before ?? team, team, update).join(', ')}\n`);
  return ExitCode.ok;
}

async function tokensCreate(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'serve tokens create');
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument: ${positionals.join(' ')}; the team goes in --team NAME`, { hint: helpHint('serve tokens create') });
  if (values.team === undefined) throw new UsageError('which team? rlm serve tokens create --team NAME', { hint: helpHint('serve tokens create') });
  await using store = await openStore(values, io, 'admin');
  const { token, record } = await store.createToken(values.team, { admin: values.admin === true });
  if (values.json) io.stdout(`${JSON.stringify({ token, ...tokenJson(record) })}\n`);
  else {
    io.stdout(`${token}\n`);
    io.stderr(
      `rlm: ${record.admin ? 'an admin token' : 'a token'} for team ${record.teamName} (id ${record.id}); it is shown only this once: only its hash is stored\n`,
    );
  }
  return ExitCode.ok;
}

async function tokensList(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandFlags(argv, 'serve tokens list');
  await using store = await openStore(values, io, 'admin');
  const tokens = await store.listTokens(values.team);
  if (values.json) {
    io.stdout(`${JSON.stringify(tokens.map(tokenJson))}\n`);
    return ExitCode.ok;
  }
  if (tokens.length === 0) io.stdout('no tokens\n');
  for (const t of tokens) {
    const state = t.revokedAt !== null ? `revoked ${iso(t.revokedAt)}` : t.lastUsedAt !== null ? `last used ${iso(t.lastUsedAt)}` : 'never used';
    io.stdout(`${t.id}  ${t.teamName}  ${t.prefix}…  created ${iso(t.createdAt)}  ${state}\n`);
  }
  return ExitCode.ok;
}

async function tokensRevoke(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'serve tokens revoke');
  if (positionals.length !== 1)
    throw new UsageError('which token? rlm serve tokens revoke ID (an id or a prefix from `rlm serve tokens list`)', { hint: helpHint('serve tokens revoke') });
  await using store = await openStore(values, io, 'admin');
  const revoked = await store.revokeToken(positionals[0] as string);
  if (!revoked) {
    io.stderr(`rlm: no token ${positionals[0]}; \`rlm serve tokens list\` shows the ids and prefixes\n`);
    return ExitCode.failure;
  }
  io.stdout(`revoked ${positionals[0]}\n`);
  return ExitCode.ok;
}

// ---------------------------------------------------------------------------------------------
// Runs

async function runsPrune(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'serve runs prune');
  const hint = helpHint('serve runs prune');
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals.join(' ')}; the age goes in --older-than DAYS`, { hint });
  if (values['older-than'] === undefined)
    throw new UsageError('how old? rlm serve runs prune --older-than DAYS (runs that finished more than DAYS ago go)', { hint });
  const days = withHint(hint, () => positiveNumber(values['older-than'], '--older-than') as number);
  await using store = await openStore(values, io, 'admin');
  let teamId: string | undefined;
  if (values.team !== undefined) {
    const team = await store.teamByName(values.team);
    if (!team) throw new ServiceError('not_found', `no team named ${values.team} (rlm serve teams list shows them)`);
    teamId = team.id;
  }
  const finishedBefore = Date.now() - days * DAY_MS;
  const dryRun = values['dry-run'] === true;
  const { runs, events } = await store.pruneRuns({ finishedBefore, dryRun, signal: io.signal, ...(teamId !== undefined ? { teamId } : {}) });
  if (values.json) io.stdout(`${JSON.stringify({ runs, events, finishedBefore: iso(finishedBefore) })}\n`);
  else {
    const scope = values.team === undefined ? '' : ` of team ${values.team}`;
    io.stdout(`${dryRun ? 'would prune' : 'pruned'} ${runs} runs${scope} (${events} events) finished before ${iso(finishedBefore)}\n`);
  }
  return ExitCode.ok;
}

function describeTeam(team: TeamRecord): string {
  return [
    team.budgetUsd === null ? 'no budget limit' : `budget ${formatCost(team.budgetUsd)}`,
    `${team.maxConcurrentRuns} running at most`,
    `${team.maxQueued} queued at most`,
    team.models === null ? 'every model' : `models: rlm${team.models.map((m) => `, rlm:${m}`).join('')}`,
  ].join(', ');
}

/** Each field `update` gave, as `budget $5.00 → $10.00` (or `budget $5.00 (unchanged)`). */
function describeChanges(before: TeamRecord, after: TeamRecord, update: TeamUpdate): string[] {
  const budget = (usd: number | null) => (usd === null ? 'no limit' : formatCost(usd));
  const models = (list: string[] | null) => (list === null ? 'every model' : ['rlm', ...list.map((m) => `rlm:${m}`)].join(' + '));
  const fields: [given: boolean, label: string, from: string, to: string][] = [
    [update.budgetUsd !== undefined, 'budget', budget(before.budgetUsd), budget(after.budgetUsd)],
    [update.maxConcurrentRuns !== undefined, 'max-concurrent-runs', String(before.maxConcurrentRuns), String(after.maxConcurrentRuns)],
    [update.maxQueued !== undefined, 'max-queued', String(before.maxQueued), String(after.maxQueued)],
    [update.models !== undefined, 'models', models(before.models), models(after.models)],
  ];
  return fields.filter(([given]) => given).map(([, label, from, to]) => (from === to ? `${label} ${to} (unchanged)` : `${label} ${from} → ${to}`));
}

function teamJson(team: TeamRecord, spentUsd: number) {
  return {
    id: team.id,
    name: team.name,
    budgetUsd: team.budgetUsd,
    spentUsd,
    maxConcurrentRuns: team.maxConcurrentRuns,
    maxQueued: team.maxQueued,
    models: team.models,
    createdAt: iso(team.createdAt),
  };
}

function tokenJson(t: TokenRecord) {
  return {
    id: t.id,
    team: t.teamName,
    prefix: t.prefix,
    createdAt: iso(t.createdAt),
    lastUsedAt: t.lastUsedAt === null ? null : iso(t.lastUsedAt),
    revokedAt: t.revokedAt === null ? null : iso(t.revokedAt),
  };
}

// ---------------------------------------------------------------------------------------------
// Values

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `--models a,rlm:b`: the configured names, without the `rlm:` prefix. */
function modelList(value: string): string[] {
  return value
    .split(',')
    .map((m) => m.trim().replace(/^rlm:/, ''))
    .filter((m) => m !== '');
}

/** What `read` answers; a usage error it throws without a hint gets `hint` (the command's --help). */
function withHint<T>(hint: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof UsageError && error.hint === undefined) throw new UsageError(error.message, { hint });
    throw error;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

const positiveInteger = (v: string | undefined, flag: string) => integer(v, flag, { min: 1 });
const nonNegativeInteger = (v: string | undefined, flag: string) => integer(v, flag, { min: 0 });
const positiveNumber = (v: string | undefined, flag: string) => number(v, flag, { above: 0 });
const nonNegativeNumber = (v: string | undefined, flag: string) => number(v, flag, { min: 0 });
const port = (v: string | undefined) => integer(v, '--port', { min: 0, max: 65535 });
