/**
 * The demo's models: scripted stand-ins that behave like a plausible RLM on the sample document,
 * deterministically and with no network. The root model looks at the context, chunks it, fans the
 * chunks out with `llm_query_batched`, aggregates, delegates the root-cause question to a child
 * RLM with `rlm_query`, and answers with `FINAL`. The sub model answers from the chunk text it
 * receives. Each step reads the REPL output it got back, as a real model would.
 */
import type { CompletionRequest } from '../../models/model-backend.js';
import { ScriptedBackend } from '../../models/scripted-backend.js';

export const DEMO_ROOT_MODEL = 'scripted-demo-root';
export const DEMO_SUB_MODEL = 'scripted-demo-sub';

/** Lines per chunk the scripted root model aims for. */
const LINES_PER_CHUNK = 400;

const repl = (prose: string, code: string) => `${prose}\n\n\`\`\`repl\n${code.trim()}\n\`\`\``;

/** The root model; it also drives the child RLM that `rlm_query` starts (children run on the root model). */
export function demoRootModel(options: { latencyMs?: number } = {}): ScriptedBackend {
  return new ScriptedBackend((request) => (isChildRun(request) ? childTurn(request) : rootTurn(request)), {
    name: 'scripted',
    latencyMs: options.latencyMs ?? 350,
  });
}

/** The sub model: lists the resolved incidents found in the chunk it is given. */
export function demoSubModel(options: { latencyMs?: number } = {}): ScriptedBackend {
  return new ScriptedBackend(
    (request) => {
      const prompt = request.messages.at(-1)?.content ?? '';
      const found = [...prompt.matchAll(/INCIDENT (INC-\d+) resolved after (\d+) min: (.+)/g)].map((m) => `${m[1]} | ${m[2]} | ${m[3]?.trim()}`);
      return found.length > 0 ? found.join('\n') : 'none';
    },
    { name: 'scripted', latencyMs: options.latencyMs ?? 40 },
  );
}

function isChildRun(request: CompletionRequest): boolean {
  return (request.messages[0]?.content ?? '').includes('given to you by a parent RLM');
}

/** How many turns the conversation has had: one per assistant message. */
function turnOf(request: CompletionRequest): number {
  return request.messages.filter((m) => m.role === 'assistant').length;
}

const lastUser = (request: CompletionRequest) => [...request.messages].reverse().find((m) => m.role === 'user')?.content ?? '';

function rootTurn(request: CompletionRequest): string {
  const last = lastUser(request);
  switch (turnOf(request)) {
    case 0:
      return repl(
        "I haven't seen the context yet. Let me check its type and size, and read the first lines to learn its format.",
        `
print(typeof context, context.length, 'characters');
const lines = context.split('\\n');
print('lines:', lines.length);
print(lines.slice(0, 8).join('\\n'));
print('incident lines:', lines.filter((l) => l.includes('INCIDENT')).length);
`,
      );
    case 1: {
      const total = Number(/lines: (\d+)/.exec(last)?.[1] ?? 3000);
      const chunks = Math.max(2, Math.ceil(total / LINES_PER_CHUNK));
      return repl(
        `The log has ${total.toLocaleString('en-US')} lines, with incidents opened and resolved throughout, and postmortems in an appendix. ` +
          `It is too long to read at once, so I will split it into ${chunks} chunks of about ${LINES_PER_CHUNK} lines and ask a sub-model to list the resolved incidents and their durations in each chunk.`,
        `
const chunkSize = Math.ceil(lines.length / ${chunks});
const chunks = [];
for (let i = 0; i < lines.length; i += chunkSize) chunks.push(lines.slice(i, i + chunkSize).join('\\n'));
const findings = llm_query_batched(chunks.map((chunk, i) =>
  \`You are reading part \${i + 1} of \${chunks.length} of an operations log. List every incident resolved in this part as "id | minutes | summary", one per line. If there is none, answer "none".\\n\\n\${chunk}\`));
findings.forEach((f, i) => print(\`part \${i + 1}: \${f}\`));
`,
      );
    }
    case 2: {
      const found = [...last.matchAll(/(INC-\d+) \| (\d+) \|/g)];
      const longest = found.sort((a, b) => Number(b[2]) - Number(a[2]))[0];
      return repl(
        `The sub-model found ${found.length} incidents. ${longest ? `${longest[1]} looks like the longest at ${longest[2]} minutes, ` : ''}` +
          'but I want to verify that in code, then gather every line that mentions it (the postmortem appendix included) and hand them to a child RLM to extract the root cause.',
        `
const incidents = findings
  .flatMap((f) => (f.trim() === 'none' ? [] : f.split('\\n')))
  .map((row) => { const [id, minutes, summary] = row.split(' | '); return { id, minutes: Number(minutes), summary }; })
  .sort((a, b) => b.minutes - a.minutes);
print(incidents.length, 'incidents; top 3:');
incidents.slice(0, 3).forEach((i) => print(\`  \${i.id}: \${i.minutes} min, \${i.summary}\`));
const worst = incidents[0];
const excerpt = lines.filter((l) => l.includes(worst.id)).join('\\n');
const cause = rlm_query(\`Here are the log lines about incident \${worst.id}. Find its root cause and the change ticket behind it, and answer in one sentence.\\n\\n\${excerpt}\`);
print('child RLM says:', cause);
`,
      );
    }
    case 3:
      return repl(
        'The child RLM found the root cause in the postmortem. I have everything I need: the incident, its duration and its cause.',
        `
const answer = \`\${worst.id} caused the longest outage: \${worst.minutes} minutes (\${worst.summary}). Root cause: \${cause}\`;
FINAL(answer);
`,
      );
    default:
      return 'FINAL(I could not finish the analysis within the turns I had.)';
  }
}

function childTurn(request: CompletionRequest): string {
  switch (turnOf(request)) {
    case 0:
      return repl(
        'My context is a task from the parent RLM with log lines about one incident. Let me read the lines that talk about causes and changes.',
        `
const task = String(context);
const relevant = task.split('\\n').filter((line) => /POSTMORTEM|root cause|CHG-\\d+/i.test(line));
print(relevant.join('\\n'));
`,
      );
    default: {
      const last = lastUser(request);
      const cause = /root cause: ([^;\n]+)/.exec(last)?.[1]?.trim();
      const ticket = /CHG-\d+/.exec(last)?.[0];
      if (!cause) return 'FINAL(The log lines do not state a root cause.)';
      return `The postmortem states it directly.\n\nFINAL(${cause.charAt(0).toUpperCase()}${cause.slice(1)}${ticket && !cause.includes(ticket) ? ` (change ${ticket})` : ''}.)`;
    }
  }
}
