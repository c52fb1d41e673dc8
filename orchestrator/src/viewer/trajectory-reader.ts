/**
 * Reads a trajectory file for the viewer, leniently, with the lenient line schemas of
 * `trajectory/trajectory-schema.ts`: our JSONL and the reference implementation's, whose lines may
 * lack our extensions, carry fields of their own (`run_context` lines, `error_type`, a tuple as
 * `final_answer`, a dict as a prompt or response), or lack `type` altogether (older files, where
 * every non-metadata line is an iteration).
 *
 * Nothing here throws on bad input: a line that is not JSON, or not a metadata, run_context or
 * iteration line of a usable shape, becomes a {@link LineProblem} and the rest of the file is read.
 * Lines of any other `type` are skipped.
 */
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import {
  LenientIterationLine,
  LenientMetadataLine,
  type LenientReplResultLine,
  type LenientRlmCallLine,
  LenientRunContextLine,
  type LenientUsageSummaryLine,
} from '../trajectory/trajectory-schema.js';
import { costOf } from '../usage/pricing.js';
import {
  type BlockView,
  type CallView,
  type CellStatus,
  isFailedCell,
  type LineProblem,
  type MessageView,
  type ModelUsageView,
  type RunContextView,
  type RunMetadataView,
  type RunView,
  type TurnView,
  type UsageView,
} from './viewed-run.js';

// The lines as the lenient schemas of trajectory-schema.ts read them: what must hold for a line to
// be drawn; anything else is optional.

type CallLine = z.infer<typeof LenientRlmCallLine>;
type ResultLine = z.infer<typeof LenientReplResultLine>;
type IterationLine = z.infer<typeof LenientIterationLine>;
type MetadataLine = z.infer<typeof LenientMetadataLine>;
type UsageSummaryLine = z.infer<typeof LenientUsageSummaryLine>;

// ---------------------------------------------------------------------------------------------
// Reading

/** Longest context preview kept from a `run_context` line. */
const CONTEXT_PREVIEW_CHARS = 2_000;

/**
 * Parses a trajectory file's text into a {@link RunView}. Blank lines are skipped; line numbers in
 * problems are 1-based.
 */
export function readRunText(jsonl: string): RunView {
  const values: Array<{ where: string; value: unknown }> = [];
  const problems: LineProblem[] = [];
  let start = 0;
  let lineNumber = 0;
  while (start <= jsonl.length) {
    let end = jsonl.indexOf('\n', start);
    if (end === -1) end = jsonl.length;
    lineNumber += 1;
    const text = jsonl.slice(start, end);
    start = end + 1;
    if (text.trim() === '') continue;
    try {
      values.push({ where: `line ${lineNumber}`, value: JSON.parse(text) });
    } catch (error) {
      problems.push({ where: `line ${lineNumber}`, message: `not JSON (${errorMessage(error)}): ${preview(text, 120)}` });
    }
  }
  return readRunLines(values, problems, null);
}

/**
 * Builds a run from parsed lines. `usageOverride` is a child run's usage as its parent's call
 * recorded it (the child's whole run), which wins over summing the child's own lines.
 */
function readRunLines(lines: Array<{ where: string; value: unknown }>, problems: LineProblem[], usageOverride: UsageView | null): RunView {
  let metadata: RunMetadataView | null = null;
  const contexts: RunContextView[] = [];
  const turns: TurnView[] = [];
  let rootUsage: UsageView | null = null;
  for (const { where, value } of lines) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push({ where, message: `not a JSON object: ${preview(JSON.stringify(value), 120)}` });
      continue;
    }
    const type = (value as { type?: unknown }).type;
    if (type === 'metadata') {
      metadata ??= toMetadata(LenientMetadataLine.parse(value));
    } else if (type === 'run_context') {
      const line = LenientRunContextLine.parse(value);
      contexts.push({
        timestamp: line.timestamp ?? null,
        query: line.root_prompt === undefined || line.root_prompt === null ? null : toText(line.root_prompt),
        sessionMode: line.session_mode ?? null,
        contextPreview: line.prompt === undefined || line.prompt === null ? null : preview(toText(line.prompt), CONTEXT_PREVIEW_CHARS),
        firstTurn: turns.length + 1,
      });
    } else if (type === 'iteration' || (type === undefined && ('response' in value || 'code_blocks' in value))) {
      const parsed = LenientIterationLine.safeParse(value);
      if (!parsed.success) {
        problems.push({ where, message: `not a usable iteration line: ${z.prettifyError(parsed.error).replace(/\n/g, ' ')}` });
        continue;
      }
      const turn = toTurn(parsed.data, turns.length + 1, where, problems);
      turns.push(turn);
      if (parsed.data.usage_summary) {
        rootUsage ??= {};
        addUsage(rootUsage, fromUsageSummary(parsed.data.usage_summary));
      }
    }
    // Lines of any other type are not part of the trajectory's drawing.
  }

  let usage: UsageView;
  let rootUsageRecorded: boolean;
  if (usageOverride) {
    usage = usageOverride;
    rootUsageRecorded = true;
  } else {
    usage = {};
    for (const turn of turns) for (const block of turn.blocks) for (const call of block.calls) addUsage(usage, call.usage);
    rootUsageRecorded = rootUsage !== null;
    if (rootUsage) addUsage(usage, rootUsage);
  }

  const finalAnswer = turns.findLast((turn) => turn.finalAnswer !== null)?.finalAnswer ?? null;
  let errorCount = 0;
  for (const turn of turns) {
    for (const block of turn.blocks) {
      if (isFailedCell(block)) errorCount += 1;
      for (const call of block.calls) {
        if (call.error !== null) errorCount += 1;
        if (call.child) errorCount += call.child.errorCount;
      }
    }
  }
  return {
    metadata,
    contexts,
    query: contexts.find((c) => c.query !== null)?.query ?? queryFromPrompt(turns[0]?.prompt ?? []),
    turns,
    finalAnswer,
    usage,
    rootUsageRecorded,
    costUsd: totalCost(usage),
    problems,
    errorCount,
  };
}

function toMetadata(line: MetadataLine): RunMetadataView {
  const known = new Set([
    'type',
    'timestamp',
    'root_model',
    'backend',
    'max_depth',
    'recursive_max_depth',
    'max_iterations',
    'environment_type',
    'other_backends',
    'run_id',
    'depth',
  ]);
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(line)) if (!known.has(key)) settings[key] = value;
  return {
    timestamp: line.timestamp ?? null,
    rootModel: line.root_model ?? null,
    backend: line.backend ?? null,
    maxDepth: line.max_depth ?? line.recursive_max_depth ?? null,
    maxIterations: line.max_iterations ?? null,
    environmentType: line.environment_type ?? null,
    otherBackends: line.other_backends ?? null,
    runId: line.run_id ?? null,
    depth: line.depth ?? null,
    settings,
  };
}

function toTurn(line: IterationLine, index: number, where: string, problems: LineProblem[]): TurnView {
  const blocks = (line.code_blocks ?? []).map((block, b): BlockView => {
    const result: Partial<ResultLine> = block.result ?? {};
    const status = result.status === 'ok' || result.status === 'error' || result.status === 'timeout' ? (result.status satisfies CellStatus) : null;
    const locals: Record<string, string> = {};
    for (const [name, value] of Object.entries(result.locals ?? {})) locals[name] = preview(toText(value), 200);
    const calls = result.rlm_calls ?? result.llm_calls ?? [];
    return {
      code: toText(block.code),
      stdout: result.stdout ?? '',
      stderr: result.stderr ?? '',
      status,
      value: result.value === undefined || result.value === null ? null : toText(result.value),
      stateLost: result.state_lost ?? false,
      executionTime: result.execution_time ?? null,
      locals,
      calls: calls.map((call, c) => toCall(call, `${where} › block ${b + 1} › call ${c + 1}`, problems)),
    };
  });
  return {
    iteration: line.iteration ?? index,
    timestamp: line.timestamp ?? null,
    prompt: toMessages(line.prompt),
    response: toText(line.response),
    blocks,
    finalAnswer: toFinalAnswer(line.final_answer),
    iterationTime: line.iteration_time ?? null,
  };
}

function toCall(line: CallLine, where: string, problems: LineProblem[]): CallView {
  const model = line.root_model ?? 'unknown model';
  let usage = line.usage_summary ? fromUsageSummary(line.usage_summary) : {};
  if (Object.keys(usage).length === 0 && (line.prompt_tokens != null || line.completion_tokens != null)) {
    usage = fromUsageSummary({
      model_usage_summaries: { [model]: { total_calls: 1, total_input_tokens: line.prompt_tokens, total_output_tokens: line.completion_tokens } },
    });
  }
  const error = line.error === undefined || line.error === null || line.error === '' ? null : toText(line.error);
  const child = line.trajectory
    ? readRunLines(
        line.trajectory.map((value, i) => ({ where: `${where} › child line ${i + 1}`, value })),
        problems,
        usage,
      )
    : null;
  return {
    kind: line.kind ?? null,
    model,
    prompt: toText(line.prompt),
    response: toText(line.response),
    error: error ?? (typeof line.error_type === 'string' ? line.error_type : null),
    usage,
    executionTime: line.execution_time ?? null,
    child,
  };
}

// ---------------------------------------------------------------------------------------------
// Usage

function fromUsageSummary(summary: UsageSummaryLine): UsageView {
  const usage: UsageView = {};
  for (const [model, line] of Object.entries(summary.model_usage_summaries ?? {})) {
    const inputTokens = line.total_input_tokens ?? 0;
    const outputTokens = line.total_output_tokens ?? 0;
    usage[model] = {
      calls: line.total_calls ?? 0,
      inputTokens,
      outputTokens,
      costUsd: line.total_cost ?? costOf(model, { inputTokens, outputTokens }),
    };
  }
  return usage;
}

function addUsage(target: UsageView, source: UsageView): void {
  for (const [model, usage] of Object.entries(source)) {
    const current: ModelUsageView | undefined = target[model];
    if (!current) {
      target[model] = { ...usage };
      continue;
    }
    current.calls += usage.calls;
    current.inputTokens += usage.inputTokens;
    current.outputTokens += usage.outputTokens;
    current.costUsd = current.costUsd === null || usage.costUsd === null ? null : current.costUsd + usage.costUsd;
  }
}

function totalCost(usage: UsageView): number | null {
  let total = 0;
  for (const model of Object.values(usage)) {
    if (model.costUsd === null) return null;
    total += model.costUsd;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Text

/** A value as display text: strings as they are, anything else as indented JSON. */
function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

function toMessages(prompt: unknown): MessageView[] {
  if (prompt === undefined || prompt === null) return [];
  if (typeof prompt === 'string') return [{ role: 'user', content: prompt }];
  if (Array.isArray(prompt)) {
    return prompt.map((message): MessageView => {
      if (typeof message === 'object' && message !== null && 'content' in message) {
        const { role, content } = message as { role?: unknown; content: unknown };
        return { role: typeof role === 'string' ? role : 'user', content: toText(content) };
      }
      return { role: 'user', content: toText(message) };
    });
  }
  return [{ role: 'user', content: toText(prompt) }];
}

/** The reference once wrote `[variable, value]` pairs as final answers; the value is the answer. */
function toFinalAnswer(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (Array.isArray(value) && value.length === 2) return toText(value[1]);
  return toText(value);
}

/** Both prompt families end their user messages with `the original query: "…"`. */
function queryFromPrompt(prompt: MessageView[]): string | null {
  for (const message of prompt.toReversed()) {
    if (message.role !== 'user') continue;
    const match = /original query: "([\s\S]*)"/.exec(message.content);
    if (match?.[1] !== undefined) return match[1];
  }
  return null;
}

function preview(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, chars)}…`;
}
