/**
 * From a Chat Completions request to a run's input. The last `user` message is the query. Every
 * other message, in order, becomes the context as a list of `{ role, content }` (content flattened
 * to a string) — lossless, and the model's code can pick a role out of it. The body's `context`
 * field (an extension) is the context as it is; with earlier messages too, it is `context_0` and the
 * messages `context_1` (RunInput.contexts). Content is a string, null, or an array of `text` parts
 * (joined with newlines); other part types are refused.
 */
import { ServiceError, type RunInput } from '../service-types.js';
import type { ChatCompletionBody } from './request-schemas.js';

/** A message of the context list. */
export interface ContextMessage {
  role: string;
  content: string;
}

export function chatRunInput(body: ChatCompletionBody): RunInput {
  const { messages } = body;
  let queryIndex = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') {
      queryIndex = i;
      break;
    }
  }
  if (queryIndex === -1) throw new ServiceError('invalid_request', 'messages: must contain a user message (the last one is the query)');
  const query = textOf(messages[queryIndex]?.content, `messages[${queryIndex}].content`);
  if (query.trim() === '') throw new ServiceError('invalid_request', `messages[${queryIndex}].content: must not be empty (the last user message is the query)`);

  const history: ContextMessage[] = [];
  messages.forEach((message, index) => {
    if (index !== queryIndex) history.push({ role: message.role, content: textOf(message.content, `messages[${index}].content`) });
  });

  const input: RunInput = { query };
  if (body.context !== undefined && history.length > 0) {
    input.context = body.context;
    input.contexts = [history];
  } else if (body.context !== undefined) {
    input.context = body.context;
  } else if (history.length > 0) {
    input.context = history;
  }
  return input;
}

function textOf(content: unknown, path: string): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new ServiceError('invalid_request', `${path}: must be a string or an array of text parts`);
  const texts: string[] = [];
  content.forEach((part: unknown, index) => {
    const at = `${path}[${index}]`;
    if (typeof part !== 'object' || part === null) throw new ServiceError('invalid_request', `${at}: must be an object { type: "text", text }`);
    const { type, text } = part as { type?: unknown; text?: unknown };
    if (type !== 'text') {
      const shown = typeof type === 'string' ? ` (got "${type.slice(0, 40)}")` : '';
      throw new ServiceError('invalid_request', `${at}.type: only "text" parts are supported${shown}`);
    }
    if (typeof text !== 'string') throw new ServiceError('invalid_request', `${at}.text: must be a string`);
    texts.push(text);
  });
  return texts.join('\n');
}
