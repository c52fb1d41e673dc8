/**
 * The OpenAI-compatible API (under `/v1`, authenticated), enough for the official SDKs unchanged:
 *
 *   POST /v1/chat/completions   runs an RLM (source `chat`) and answers a Chat Completion; with
 *                               `stream: true`, `chat.completion.chunk` events ending in `data: [DONE]`
 *   GET  /v1/models             the served models the team may use, as an OpenAI list
 *   GET  /v1/models/:id         one of them
 *
 * `model` is `rlm` (the default root model) or `rlm:<name>` (run-submission.ts); the messages
 * become the run's input as chat-messages.ts says. The request waits for the run's end (through
 * notices and the store); a client that disconnects first cancels the run.
 *
 * A run that did not succeed answers 502 with `error.code` `run_failed` (its stored error as the
 * message) or `run_cancelled`, and `x-should-retry: false` so that the SDKs do not resubmit it; on
 * a stream that already started, the same error object arrives as a `data:` event (the SDKs throw
 * it) and the stream ends without `[DONE]`. A server shutting down while the run waits answers 503
 * `shutting_down` (the run itself goes on or is cancelled by the drain).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type RunRecord, ServiceError, type TeamRecord } from '../service-types.js';
import { teamOf } from './auth.js';
import { chatRunInput } from './chat-messages.js';
import { errorBody, parseRequest, sendServiceError } from './http-errors.js';
import { ChatCompletionBody, ModelParams } from './request-schemas.js';
import { waitForRunEnd } from './run-follower.js';
import { cancelRun, submitRun, teamMayUse } from './run-submission.js';
import { totalTokens } from './run-view.js';
import type { RoutesDeps } from './runs-routes.js';
import { startSse } from './sse.js';

interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

function completionUsage(run: RunRecord): CompletionUsage {
  const { input, output } = totalTokens(run.usage);
  return { prompt_tokens: input, completion_tokens: output, total_tokens: input + output };
}

/** Why a run that did not succeed has no completion: the code and message of its error body. */
function runFailure(run: RunRecord): { code: string; message: string } {
  if (run.status === 'cancelled') return { code: 'run_cancelled', message: `run ${run.id} was cancelled${run.error ? `: ${run.error}` : ''}` };
  return { code: 'run_failed', message: `run ${run.id} failed${run.error ? `: ${run.error}` : ''}` };
}

/** Registers the OpenAI-compatible routes on the `/v1` scope. */
export function registerOpenAiRoutes(app: FastifyInstance, deps: RoutesDeps): void {
  const startedAt = Math.floor(Date.now() / 1000);

  const modelObject = (id: string) => ({ id, object: 'model' as const, created: startedAt, owned_by: 'rlm' });

  app.get('/models', async (request) => {
    const team = teamOf(request);
    return { object: 'list', data: deps.settings.models.filter((m) => teamMayUse(team, m)).map((m) => modelObject(m.id)) };
  });

  app.get('/models/:model', async (request) => {
    const team = teamOf(request);
    const { model } = parseRequest(ModelParams, request.params, 'path');
    const served = deps.settings.models.find((m) => m.id === model && teamMayUse(team, m));
    if (!served) throw new ServiceError('not_found', `model ${model} not found`);
    return modelObject(served.id);
  });

  app.post('/chat/completions', async (request, reply) => {
    const body = parseRequest(ChatCompletionBody, request.body, 'body');
    const team = teamOf(request);
    const input = chatRunInput(body);
    const { run, model } = await submitRun(deps, team, { input, model: body.model, language: body.language, limits: body.limits, source: 'chat' });
    request.log.info({ runId: run.id, stream: body.stream === true }, 'chat completion run queued');
    const head = { id: `chatcmpl-${run.id}`, created: Math.floor(run.createdAt / 1000), model: model.id };
    if (body.stream === true) return streamCompletion(deps, request, reply, team, run.id, head, body.stream_options?.include_usage === true);
    return awaitCompletion(deps, request, reply, team, run.id, head);
  });
}

interface CompletionHead {
  id: string;
  created: number;
  model: string;
}

async function awaitCompletion(
  deps: RoutesDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  team: TeamRecord,
  runId: string,
  head: CompletionHead,
): Promise<FastifyReply> {
  const clientGone = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableEnded) clientGone.abort();
  };
  reply.raw.on('close', onClose);
  // Gone already, while the run was being submitted.
  if (reply.raw.destroyed || request.raw.socket.destroyed) clientGone.abort();
  let run: RunRecord | null;
  try {
    run = await waitForRunEnd(deps, team.id, runId, { signal: AbortSignal.any([clientGone.signal, deps.closing]), pollMs: deps.heartbeatMs });
  } finally {
    reply.raw.off('close', onClose);
  }
  if (run === null) {
    if (clientGone.signal.aborted) {
      await cancelForGoneClient(deps, request, team, runId);
      // Nobody reads this; it ends the request's lifecycle (logs, metrics) as nginx would say it.
      return reply.code(499).send(errorBody('client_closed', 'the client closed the connection'));
    }
    return sendServiceError(reply, new ServiceError('shutting_down', `the server is shutting down; run ${runId} may still finish: GET /v1/runs/${runId}`));
  }
  if (run.status !== 'succeeded') {
    const failure = runFailure(run);
    return reply.code(502).header('x-should-retry', 'false').send(errorBody(failure.code, failure.message));
  }
  return reply.send({
    ...head,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: run.answer ?? '', refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: completionUsage(run),
  });
}

function streamCompletion(
  deps: RoutesDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  team: TeamRecord,
  runId: string,
  head: CompletionHead,
  includeUsage: boolean,
): FastifyReply {
  // No `closing` here: on shutdown the stream says so in an error event before it ends.
  const sse = startSse(reply, { heartbeatMs: deps.heartbeatMs, preamble: `: rlm run ${runId}\n\n` });
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    sse.send({ data: JSON.stringify({ ...head, object: 'chat.completion.chunk', choices, ...(includeUsage ? { usage: null } : {}), ...extra }) });

  void (async () => {
    try {
      await chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      const run = await waitForRunEnd(deps, team.id, runId, { signal: AbortSignal.any([sse.signal, deps.closing]), pollMs: deps.heartbeatMs });
      if (run === null) {
        if (deps.closing.aborted && !sse.signal.aborted)
          await sse.send({
            data: JSON.stringify(errorBody('shutting_down', `the server is shutting down; run ${runId} may still finish: GET /v1/runs/${runId}`)),
          });
        else await cancelForGoneClient(deps, request, team, runId);
        return;
      }
      if (run.status !== 'succeeded') {
        const failure = runFailure(run);
        await sse.send({ data: JSON.stringify(errorBody(failure.code, failure.message)) });
        return;
      }
      await chunk([{ index: 0, delta: { content: run.answer ?? '' }, logprobs: null, finish_reason: null }]);
      await chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
      if (includeUsage) await chunk([], { usage: completionUsage(run) });
      await sse.send({ data: '[DONE]' });
    } catch (error) {
      request.log.error({ err: error, runId }, 'chat completion stream failed');
      const message = ServiceError.isInstance(error) ? error.message : `internal error; quote request id ${request.id} to the operator`;
      await sse.send({ data: JSON.stringify(errorBody(ServiceError.isInstance(error) ? error.kind : 'internal', message)) });
    } finally {
      sse.end();
    }
  })();
  return reply;
}

async function cancelForGoneClient(deps: RoutesDeps, request: FastifyRequest, team: TeamRecord, runId: string): Promise<void> {
  request.log.info({ runId }, 'chat client went away; cancelling its run');
  try {
    await cancelRun(deps, team.id, runId);
  } catch (error) {
    request.log.error({ err: error, runId }, 'could not cancel the run of a client that went away');
  }
}
