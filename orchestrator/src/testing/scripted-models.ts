/**
 * Scripted models for the engine's tests, in-process and in containers alike: responses that run
 * code, a sub model that echoes, and a model that plays every level of a recursion tree.
 */
import type { CompletionRequest } from '../models/model-backend.js';
import { ScriptedBackend } from '../models/scripted-backend.js';

/** A response that runs `code` in a ```repl fence. */
export const replResponse = (code: string, prose = 'Let me run this.') => `${prose}\n\`\`\`repl\n${code}\n\`\`\``;

/** The text of a request's last message. */
export const lastUserMessage = (request: CompletionRequest) => request.messages.at(-1)?.content ?? '';

/** Whether a request comes from a child RLM (whose first message says a parent gave it its task). */
export const isChildRequest = (request: CompletionRequest) => (request.messages[0]?.content ?? '').includes('parent RLM');

/** A sub model that echoes prompts in upper case (and fails on "fail"). */
export function echoSub() {
  return new ScriptedBackend(
    (request) => {
      const prompt = lastUserMessage(request);
      return prompt === 'fail' ? new Error('sub model overloaded') : `ECHO ${prompt.toUpperCase()}`;
    },
    { name: 'scripted-sub' },
  );
}

/**
 * One model for every level of a JavaScript tree of depth 2: the root asks a child, the child asks
 * a grandchild (whose `rlm_query`, at the maximum depth, is a plain `llm_query`), and each level
 * answers with what it got: `root got: child saw child saw ECHO DEEPEST: …`, followed by
 * `rootSuffix` (code evaluated in the root's last cell).
 */
export function depthTwoTreeModel(rootSuffix = '""') {
  return new ScriptedBackend((request) => {
    const turn = request.messages.filter((m) => m.role === 'assistant').length;
    if (turn === 0) {
      return isChildRequest(request)
        ? replResponse('const inner = rlm_query("deepest: " + context.slice(0, 40)); print(inner)')
        : replResponse('const r = rlm_query("child task"); print(r)');
    }
    return isChildRequest(request) ? replResponse('FINAL("child saw " + inner)') : replResponse(`FINAL("root got: " + r + ${rootSuffix})`);
  });
}
