/**
 * What the engine says to the root model: the system prompt (the REPL's API and how to work), the
 * first user message (the query and a description of the context — never the context), one
 * message per later turn (the outputs of the code it ran), the nudge for a response without code,
 * and the last call when the turns run out.
 *
 * The system prompt follows the reference implementation's `RLM_SYSTEM_PROMPT` in spirit and
 * structure, rewritten for this REPL. Everything language-specific sits in one
 * {@link ReplGuide} per REPL language: JavaScript, and Python (whose wording and examples stay
 * closest to the reference's, itself written for a Python REPL).
 */
import type { ExecuteResult, Language } from '@rlm/shared';
import { InvalidOptionError } from '../errors.js';

/** Characters of one block's output the model sees by default; the rest is cut with a marker. */
export const DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS = 20_000;

export interface PromptTool {
  /** The name cells use. */
  name: string;
  /** What it does, its arguments and what it returns (or what the data holds), as the model should read it. */
  description: string;
  /** A host function to call, or plain data in a variable; said in the prompt when given. */
  kind?: 'function' | 'data';
}

export interface SystemPromptOptions {
  language: Language;
  /** Caller-supplied tools and data callable from cells; listed in their own section. */
  tools?: readonly PromptTool[];
  /** Levels of child RLMs allowed below the root (0: `rlm_query` is always a plain `llm_query`). */
  maxDepth: number;
  /** Depth of the run this prompt is for; 0 (the root) unless given. */
  depth?: number;
  /** Model names cells may pass as `{ model }`; when absent the prompt says to leave `model` out. */
  models?: readonly string[];
  /** Roughly how many characters a sub-model prompt may hold; not mentioned when absent. */
  subModelContextChars?: number;
  /** Characters of a block's output the model will see; {@link DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS} unless given. */
  outputLimitChars?: number;
  /**
   * False for a run without sub-calls (`RlmOptions.subcalls: false`): the prompt then never mentions
   * `llm_query`, `llm_query_batched`, `rlm_query`, `rlm_query_batched` or sub-LLMs, and its examples
   * work with code alone. Default true.
   */
  subcalls?: boolean;
}

/** The parts of the system prompt that depend on the REPL language. */
interface ReplGuide {
  /** How to name the language in prose. */
  languageName: string;
  /** How a call passes the model option, after the first argument: `, { model }` or `, model=None`. */
  modelOption: string;
  /** What a batched call returns, in prose: `an array`, `a list`. */
  listOf: string;
  /** The numbered list of what the REPL holds; `rlmLine` describes `rlm_query` for this depth. */
  environment(options: { subModelLimit: string; modelNote: string; rlmLines: string; toolsSection: string }): string;
  /** The numbered list of what the REPL holds in a run without sub-calls; the tools, if any, come as item 4. */
  environmentWithoutSubcalls(options: { toolsSection: string }): string;
  /** Language-specific notes: state, output, modules, the sandbox; `subcalls` false leaves `llm_query` out. */
  notes(options: { outputLimitChars: number; subcalls: boolean }): string;
  /** Worked examples in ```repl fences. */
  examples(): string;
  /** Worked examples for a run without sub-calls: code alone. */
  examplesWithoutSubcalls(): string;
  /** How to finish. */
  finishing(): string;
}

const count = (n: number) => n.toLocaleString('en-US');

const javascriptGuide: ReplGuide = {
  languageName: 'JavaScript',
  modelOption: ', { model }',
  listOf: 'an array',

  environment: ({ subModelLimit, modelNote, rlmLines, toolsSection }) => `The REPL environment is initialized with:
1. A \`context\` variable that contains extremely important information about your query. It is a string for one text, an array for a list, an object mapping relative path → content for several files, or a parsed JSON value. Check what it holds before anything else, and make sure you look through it sufficiently as you answer your query.
2. A \`llm_query(prompt, { model })\` function that makes a single LLM completion call (no REPL, no iteration) and returns its answer as a string. It is synchronous: no \`await\` needed (awaiting it works too). Fast and lightweight -- use it for simple extraction, summarization, or Q&A over a chunk of text.${subModelLimit} ${modelNote}
3. A \`llm_query_batched(prompts, { model })\` function that runs many \`llm_query\` calls concurrently and returns an array of strings in the same order as \`prompts\`. A prompt that failed gives a string starting with \`Error:\` in its slot; the others are unaffected. Much faster than calling \`llm_query\` in a loop for independent prompts.
${rlmLines}
6. A \`SHOW_VARS()\` function that prints and returns the variables you have created and their types.
7. \`print(...)\` (and \`console.log\`) to see values; \`console.error\` writes to stderr. The value of a cell's last expression is shown too, as in Node's REPL.${toolsSection}`,

  environmentWithoutSubcalls: ({ toolsSection }) => `The REPL environment is initialized with:
1. A \`context\` variable that contains extremely important information about your query. It is a string for one text, an array for a list, an object mapping relative path → content for several files, or a parsed JSON value. Check what it holds before anything else, and make sure you look through it sufficiently as you answer your query.
2. A \`SHOW_VARS()\` function that prints and returns the variables you have created and their types.
3. \`print(...)\` (and \`console.log\`) to see values; \`console.error\` writes to stderr. The value of a cell's last expression is shown too, as in Node's REPL.${toolsSection}
There is no other model to call from the REPL: you work through the context with code alone.`,

  notes: ({ outputLimitChars, subcalls }) => `**How the REPL behaves:**
- Each \`\`\`repl block runs as a cell of modern JavaScript in Node.js. Variables persist across cells and turns, top-level \`const\`/\`let\`/\`function\`/\`class\` included (a later cell may declare the same name again). Top-level \`await\` works.
- Node's built-in modules are available through \`require('node:…')\` (e.g. \`require('node:crypto')\`). There is no network and no npm packages; the file system is read-only except \`/tmp\`.
- You will only see up to ${count(outputLimitChars)} characters of each cell's output; longer output is cut with a marker. Don't print a huge string to read it: slice it, search it with regular expressions${subcalls ? ', or hand pieces to `llm_query` and keep the answers in variables' : ', and keep what you find in variables'}. Use variables as buffers to build up your final answer.
- A cell that runs too long is stopped; the variables from before it are kept. If a cell ever reports that the REPL was restarted, every variable you made is gone (the context variables are loaded again).`,

  examples:
    () => `When you want to execute JavaScript code in the REPL environment, wrap it in triple backticks with the 'repl' language identifier. For example, to look at the context first:
\`\`\`repl
print(typeof context, Array.isArray(context) ? context.length : Object.keys(context ?? {}).length);
print(String(typeof context === 'string' ? context : JSON.stringify(context)).slice(0, 2000));
\`\`\`

Say we want to find the magic number in the context (assuming the context is a very long string), so we chunk it:
\`\`\`repl
const chunk = context.slice(0, 100_000);
const answer = llm_query(\`What is the magic number in this text? Say "none" if there is none.\\n\\n\${chunk}\`);
print(answer);
\`\`\`

As an example, suppose you're trying to answer a question about a book whose sections are the items of \`context\`. You can go through it section by section, query an LLM on each, and keep track of what you learn in a buffer:
\`\`\`repl
const question = 'Did Gryffindor win the House Cup because they led?';
let notes = '';
for (const [i, section] of context.entries()) {
  notes = llm_query(\`You are reading a book, section \${i + 1} of \${context.length}. Notes so far: \${notes}\\nUpdate the notes with anything that helps answer: \${question}\\n\\nSection:\\n\${section}\`);
  print(\`after section \${i + 1}: \${notes.slice(0, 200)}\`);
}
\`\`\`

When the context is not that long (say a few million characters), a simple and fast strategy is to split it into chunks of a size a sub-LLM handles well and ask the same question of every chunk concurrently with \`llm_query_batched\`:
\`\`\`repl
const query = 'How many jobs did the author of "The Great Gatsby" have?';
const text = Array.isArray(context) ? context.join('\\n') : String(context);
const size = Math.ceil(text.length / 10);
const chunks = Array.from({ length: 10 }, (_, i) => text.slice(i * size, (i + 1) * size));
const answers = llm_query_batched(chunks.map((chunk) => \`Answer only if the documents support it: \${query}\\n\\nDocuments:\\n\${chunk}\`));
answers.forEach((a, i) => print(\`chunk \${i}: \${a}\`));
const combined = llm_query(\`Combine these per-chunk answers into one answer to: \${query}\\n\\n\${answers.join('\\n')}\`);
print(combined);
\`\`\`

For a subtask that needs its own reasoning, delegate it with \`rlm_query\` and use the result in your program -- branch on it, check it, combine it:
\`\`\`repl
const trend = rlm_query(\`Analyze this dataset and conclude with one word: up, down, or stable.\\n\\n\${JSON.stringify(data)}\`);
const advice = /up/i.test(trend) ? 'Consider increasing exposure.' : /down/i.test(trend) ? 'Consider hedging.' : 'Hold position.';
print(trend, advice);
\`\`\``,

  examplesWithoutSubcalls:
    () => `When you want to execute JavaScript code in the REPL environment, wrap it in triple backticks with the 'repl' language identifier. For example, to look at the context first:
\`\`\`repl
print(typeof context, Array.isArray(context) ? context.length : Object.keys(context ?? {}).length);
print(String(typeof context === 'string' ? context : JSON.stringify(context)).slice(0, 2000));
\`\`\`

Say we want to find the magic number in a very long text: search it with a regular expression and print only what is around each match:
\`\`\`repl
const text = typeof context === 'string' ? context : JSON.stringify(context);
const hits = [...text.matchAll(/magic number[^\\n]{0,200}/gi)].map((m) => m[0]);
print(hits.length, hits.slice(0, 10));
\`\`\`

To count or aggregate over many records, parse them and compute the answer exactly in code, keeping intermediate results in variables:
\`\`\`repl
const lines = text.split('\\n').filter(Boolean);
const counts = {};
for (const line of lines) { const label = line.split('|').at(-1)?.trim() ?? ''; counts[label] = (counts[label] ?? 0) + 1; }
print(counts);
\`\`\``,

  finishing:
    () => `IMPORTANT: When you are done, you MUST provide your final answer -- and not before you have actually done the work. Two options, both available from code and as plain text:
1. \`FINAL(value)\` ends the run with \`value\` as the answer (a string; anything else is rendered as JSON).
2. \`FINAL_VAR("name")\` ends the run with the variable of that name as the answer. In code, pass the name as a string: \`FINAL_VAR("answer")\`, not \`FINAL_VAR(answer)\`. If there is no such variable you get an error listing the variables, and the run goes on.

Calling them in a \`\`\`repl block is the surest way: the run ends once that cell finishes, and the blocks after it don't run. You may also write \`FINAL(your answer)\` or \`FINAL_VAR(name)\` as plain text at the start of a line, outside code blocks, once you know the answer. Don't write either of them in prose before you are done, and don't give a final answer in the same response as code whose output you haven't seen yet.
If you're unsure what variables exist, call \`SHOW_VARS()\` in a repl block.`,
};

const pythonGuide: ReplGuide = {
  languageName: 'Python',
  modelOption: ', model=None',
  listOf: 'a list',

  environment: ({ subModelLimit, modelNote, rlmLines, toolsSection }) => `The REPL environment is initialized with:
1. A \`context\` variable that contains extremely important information about your query. It is a \`str\` for one text, a \`list\` for a list, a \`dict\` mapping relative path → content for several files, or a parsed JSON value. You should check the content of the \`context\` variable to understand what you are working with. Make sure you look through it sufficiently as you answer your query.
2. A \`llm_query(prompt, model=None)\` function that makes a single LLM completion call (no REPL, no iteration) and returns its answer as a \`str\`. Fast and lightweight -- use this for simple extraction, summarization, or Q&A over a chunk of text.${subModelLimit} ${modelNote}
3. A \`llm_query_batched(prompts, model=None)\` function that runs multiple \`llm_query\` calls concurrently: returns \`List[str]\` in the same order as the input prompts. A prompt that failed gives a string starting with \`Error:\` in its slot; the others are unaffected. Much faster than sequential \`llm_query\` calls for independent queries.
${rlmLines}
6. A \`SHOW_VARS()\` function that prints and returns the variables you have created and their types. Use it to check what variables exist before using FINAL_VAR.
7. The ability to use \`print()\` statements to view the output of your REPL code and continue your reasoning (\`print(..., file=sys.stderr)\` writes to stderr). The value of a cell's last expression is shown too, as in Python's interactive REPL.${toolsSection}`,

  environmentWithoutSubcalls: ({ toolsSection }) => `The REPL environment is initialized with:
1. A \`context\` variable that contains extremely important information about your query. It is a \`str\` for one text, a \`list\` for a list, a \`dict\` mapping relative path → content for several files, or a parsed JSON value. You should check the content of the \`context\` variable to understand what you are working with. Make sure you look through it sufficiently as you answer your query.
2. A \`SHOW_VARS()\` function that prints and returns the variables you have created and their types. Use it to check what variables exist before using FINAL_VAR.
3. The ability to use \`print()\` statements to view the output of your REPL code and continue your reasoning (\`print(..., file=sys.stderr)\` writes to stderr). The value of a cell's last expression is shown too, as in Python's interactive REPL.${toolsSection}
There is no other model to call from the REPL: you work through the context with code alone.`,

  notes: ({ outputLimitChars, subcalls }) => `**How the REPL behaves:**
- Each \`\`\`repl block runs as a cell of Python 3 (CPython in WebAssembly). Variables, functions, classes and imports persist across cells and turns.
- \`re\`, \`json\`, \`math\`, \`collections\` and \`itertools\` are already imported, and the rest of the standard library can be imported. There is no network, no pip and no third-party packages (no numpy or pandas); the file system is read-only apart from the interpreter's own scratch space.
- You will only see up to ${count(outputLimitChars)} characters of each cell's output; longer output is cut with a marker. Don't print a huge string to read it: slice it, search it with regular expressions${subcalls ? ', or hand pieces to `llm_query` and keep the answers in variables' : ', and keep what you find in variables'}. Use variables as buffers to build up your final answer.
- A cell that runs too long is interrupted with a \`KeyboardInterrupt\`; the variables from before it are kept. If a cell ever reports that the REPL was restarted, every variable you made is gone (the context variables are loaded again).`,

  examples:
    () => `When you want to execute Python code in the REPL environment, wrap it in triple backticks with the 'repl' language identifier. For example, to look at the context first:
\`\`\`repl
print(type(context).__name__, len(context))
print(str(context)[:2000])
\`\`\`

Say we want to find the magic number in the context (assuming the context is a string), and the context is very long, so we want to chunk it:
\`\`\`repl
chunk = context[:100_000]
answer = llm_query(f"What is the magic number in the context? Say 'none' if there is none. Here is the chunk: {chunk}")
print(answer)
\`\`\`

As an example, suppose you're trying to answer a question about a book whose sections are the items of \`context\`. You can iteratively go through it section by section, query an LLM on each, and track relevant information in a buffer:
\`\`\`repl
query = "In Harry Potter and the Sorcerer's Stone, did Gryffindor win the House Cup because they led?"
buffer = ""
for i, section in enumerate(context):
    buffer = llm_query(f"You are iteratively looking through a book, and are on section {i + 1} of {len(context)}. So far you know: {buffer}\\nGather information to help answer: {query}\\n\\nHere is the section:\\n{section}")
    print(f"After section {i + 1} of {len(context)}, you have tracked: {buffer[:200]}")
\`\`\`

When the context isn't that long (say a few million characters), a simple and viable strategy is to split it into chunks a sub-LLM handles well and ask the same question of every chunk concurrently with \`llm_query_batched\`:
\`\`\`repl
query = 'A man became famous for his book "The Great Gatsby". How many jobs did he have?'
text = "\\n".join(context) if isinstance(context, list) else str(context)
chunk_size = len(text) // 10 + 1
chunks = [text[i:i + chunk_size] for i in range(0, len(text), chunk_size)]
prompts = [f"Try to answer the following query: {query}. Here are the documents:\\n{chunk}\\nOnly answer if you are confident in your answer based on the evidence." for chunk in chunks]
answers = llm_query_batched(prompts)
for i, answer in enumerate(answers):
    print(f"I got the answer from chunk {i}: {answer}")
final_answer = llm_query(f"Aggregating all the answers per chunk, answer the original query: {query}\\n\\nAnswers:\\n" + "\\n".join(answers))
print(final_answer)
\`\`\`

For subtasks that require deeper reasoning, use \`rlm_query\` instead. The child gets its own REPL to iterate; you then use the result in your program -- branch on it, check it, combine it:
\`\`\`repl
trend = rlm_query(f"Analyze this dataset and conclude with one word: up, down, or stable: {data}")
if "up" in trend.lower():
    recommendation = "Consider increasing exposure."
elif "down" in trend.lower():
    recommendation = "Consider hedging."
else:
    recommendation = "Hold position."
print(trend, recommendation)
\`\`\``,

  examplesWithoutSubcalls:
    () => `When you want to execute Python code in the REPL environment, wrap it in triple backticks with the 'repl' language identifier. For example, to look at the context first:
\`\`\`repl
print(type(context).__name__, len(context))
print(str(context)[:2000])
\`\`\`

Say we want to find the magic number in a very long text: search it with a regular expression and print only what is around each match:
\`\`\`repl
text = context if isinstance(context, str) else json.dumps(context)
hits = re.findall(r"magic number[^\\n]{0,200}", text, flags=re.IGNORECASE)
print(len(hits), hits[:10])
\`\`\`

To count or aggregate over many records, parse them and compute the answer exactly in code, keeping intermediate results in variables:
\`\`\`repl
lines = [line for line in text.split("\\n") if line]
counts = collections.Counter(line.split("|")[-1].strip() for line in lines)
print(counts)
\`\`\``,

  finishing:
    () => `IMPORTANT: When you are done, you MUST provide your final answer -- and not before you have actually done the work. Two options, both available from code and as plain text:
1. \`FINAL(value)\` ends the run with \`value\` as the answer (a \`str\`; anything else is rendered as JSON when it can be, else with \`str()\`).
2. \`FINAL_VAR("name")\` ends the run with the variable of that name as the answer. In code, pass the name as a string: \`FINAL_VAR("answer")\`, not \`FINAL_VAR(answer)\`. If there is no such variable you get an error listing the variables, and the run goes on.

WARNING - COMMON MISTAKE: FINAL_VAR retrieves an EXISTING variable. Create and assign the variable in a \`\`\`repl block first; calling FINAL_VAR for a name you never assigned does not end the run.

Calling them in a \`\`\`repl block is the surest way: the run ends once that cell finishes, and the blocks after it don't run. You may also write \`FINAL(your answer)\` or \`FINAL_VAR(name)\` as plain text at the start of a line, outside code blocks, once you know the answer. Don't write either of them in prose before you are done, and don't give a final answer in the same response as code whose output you haven't seen yet.
If you're unsure what variables exist, call \`SHOW_VARS()\` in a repl block.`,
};

const REPL_GUIDES: Record<Language, ReplGuide> = { javascript: javascriptGuide, python: pythonGuide };

function guideFor(language: Language): ReplGuide {
  const guide = (REPL_GUIDES as Partial<Record<string, ReplGuide>>)[language];
  if (!guide) {
    throw new InvalidOptionError('language', `must be 'javascript' or 'python', got ${JSON.stringify(language)}`);
  }
  return guide;
}

function rlmQueryLines(recursionAvailable: boolean, levelsLeft: number, { modelOption, listOf }: ReplGuide): string {
  if (!recursionAvailable) {
    return `4. A \`rlm_query(prompt${modelOption})\` function. Here it is the same as \`llm_query\`: the maximum recursion depth is reached, so no child RLM can be started.
5. A \`rlm_query_batched(prompts${modelOption})\` function: here the same as \`llm_query_batched\`.`;
  }
  const depthNote =
    levelsLeft === 1
      ? 'A child cannot start children of its own (its `rlm_query` is a plain `llm_query`).'
      : `Children can nest up to ${levelsLeft} levels below you.`;
  return `4. A \`rlm_query(prompt${modelOption})\` function that starts a **child RLM**: a recursive sub-call whose context is \`prompt\`, with its own REPL, that reasons iteratively just like you and returns its final answer as a string. Use it when a subtask needs multi-step reasoning, code, or its own iteration -- not just a one-shot answer. ${depthNote} Children draw on the same budget as you.
5. A \`rlm_query_batched(prompts${modelOption})\` function that starts one child RLM per prompt, concurrently; ${listOf} of answers in input order.`;
}

/**
 * The system prompt for a run: the REPL's API, how to work, worked examples, how to finish, and the
 * caller's tools when there are any.
 *
 * @throws {InvalidOptionError} (`language`) a language other than `javascript` or `python`.
 */
export function buildSystemPrompt(options: SystemPromptOptions): string {
  const guide = guideFor(options.language);
  const depth = options.depth ?? 0;
  const recursionAvailable = depth < options.maxDepth;
  const subModelLimit =
    options.subModelContextChars === undefined
      ? ''
      : ` The sub-LLM can take around ${count(options.subModelContextChars)} characters per prompt, so don't be afraid to put a lot of context into it.`;
  const models = options.models ?? [];
  const modelNote =
    models.length === 0
      ? '`model` is optional; leave it out to use the default sub-model.'
      : `\`model\` is optional (the default sub-model answers without it); the models you may name are ${models.map((m) => `\`${m}\``).join(', ')}.`;
  const tools = options.tools ?? [];
  const subcalls = options.subcalls !== false;
  const toolsSection =
    tools.length === 0
      ? ''
      : `\n${subcalls ? 8 : 4}. Custom tools and data provided for this task, callable from cells by name (functions run on the host: arguments and results must be JSON values):\n${tools
          .map((tool) => {
            const kind = tool.kind === 'function' ? ' (function)' : tool.kind === 'data' ? ' (data)' : '';
            const description = tool.description.trim().replace(/\n/g, '\n     ') || 'no description given';
            return `   - \`${tool.name}\`${kind}: ${description}`;
          })
          .join('\n')}`;

  if (!subcalls) return systemPromptWithoutSubcalls(guide, toolsSection, options.outputLimitChars ?? DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS);

  return `You are tasked with answering a query with associated context. You can access, transform, and analyze this context interactively in a ${guide.languageName} REPL environment that can recursively query sub-LLMs, which you are strongly encouraged to use as much as possible. You will be queried iteratively until you provide a final answer.

${guide.environment({ subModelLimit, modelNote, rlmLines: rlmQueryLines(recursionAvailable, options.maxDepth - depth, guide), toolsSection })}

**When to use \`llm_query\` vs \`rlm_query\`:**
- Use \`llm_query\` for simple, one-shot tasks: extracting information from a chunk, summarizing text, answering a factual question, classifying content. These are fast single LLM calls.
- Use \`rlm_query\` when the subtask itself requires deeper thinking: multi-step reasoning, a sub-problem that needs its own REPL and iteration, or a task where a single LLM call might not be enough.

**Breaking down problems:** Break problems into digestible components -- chunk or summarize a large context, or decompose a hard task into easier sub-problems and delegate them via \`llm_query\` / \`rlm_query\`. Use the REPL to write a **programmatic strategy** that uses these calls to solve the problem: plan steps, branch on results, combine answers in code.

**REPL for computation:** Use the REPL for exact steps too -- counting, searching with regular expressions, arithmetic, parsing -- and pass the results to an LLM call when interpretation is needed.

${guide.notes({ outputLimitChars: options.outputLimitChars ?? DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS, subcalls: true })}

Make sure to explicitly look through the context in the REPL before answering. Figure out a chunking strategy, split the context into sensible chunks, query an LLM per chunk and keep the answers in a buffer, then query an LLM over the buffers to produce your final answer. Sub-LLMs are powerful: analyze your input and see whether a few sub-LLM calls over large chunks are enough.

${guide.examples()}

${guide.finishing()}

Think step by step carefully, plan, and execute this plan immediately in your response -- do not just say "I will do this" or "I will do that". Use the REPL and sub-LLMs as much as possible. Remember to explicitly answer the original query in your final answer.`;
}

/**
 * The system prompt of a run without sub-calls (the paper's "no sub-calls" ablation): the same REPL,
 * the same way to finish, and nothing about other models, so the model explores the context with
 * code alone.
 */
function systemPromptWithoutSubcalls(guide: ReplGuide, toolsSection: string, outputLimitChars: number): string {
  return `You are tasked with answering a query with associated context. You can access, transform, and analyze this context interactively in a ${guide.languageName} REPL environment. You will be queried iteratively until you provide a final answer.

${guide.environmentWithoutSubcalls({ toolsSection })}

**Breaking down problems:** Break problems into digestible components -- look at the context's structure, split it into sensible pieces, and write a **programmatic strategy** that goes through them: search with regular expressions, parse, count, filter, and keep what you find in variables.

${guide.notes({ outputLimitChars, subcalls: false })}

Make sure to explicitly look through the context in the REPL before answering: it is usually far too long to print whole, so print samples and search it.

${guide.examplesWithoutSubcalls()}

${guide.finishing()}

Think step by step carefully, plan, and execute this plan immediately in your response -- do not just say "I will do this" or "I will do that". Remember to explicitly answer the original query in your final answer.`;
}

export interface FirstUserMessageOptions {
  query: string;
  /** {@link formatContextDescription}'s text for the context. */
  contextDescription: string;
  /** The REPL variables holding contexts, `context` first (`context_1`… in a session). */
  contextVariables: readonly string[];
  /** Earlier conversations of a session, readable as `history_0`…; 0 for none. */
  historyCount: number;
}

const quoted = (query: string) => `"${query}"`;

/**
 * The first user message: the context's description and the query — never the context itself —
 * telling the model this is turn 1 and that it should look at the context before answering.
 */
export function buildFirstUserMessage(options: FirstUserMessageOptions): string {
  const parts = [options.contextDescription.trim()];
  const variables = options.contextVariables;
  if (variables.length > 1) {
    parts.push(
      `You have ${variables.length} contexts, in the variables ${variables.map((v) => `\`${v}\``).join(', ')}; ` +
        `the description above is of the newest one, \`${variables[variables.length - 1] ?? 'context'}\`.`,
    );
  }
  if (options.historyCount === 1) {
    parts.push('An earlier conversation of this session is readable in the variable `history_0`.');
  } else if (options.historyCount > 1) {
    parts.push(`Earlier conversations of this session are readable in the variables \`history_0\` through \`history_${options.historyCount - 1}\`.`);
  }
  parts.push(
    "Turn 1. You have not interacted with the REPL environment or seen your context yet. Your next action should be to look through it and figure out how to answer the query, so don't just provide a final answer yet.",
    `Think step by step about what to do using the REPL environment (which holds the context) to answer the original query: ${quoted(options.query)}`,
    'Write your code in ```repl blocks. Your next action:',
  );
  return parts.join('\n\n');
}

export interface TurnMessageOptions {
  /** The turn about to start, 1-based (the first user message is turn 1, so this is ≥ 2). */
  turn: number;
  /** The turn limit, when the model should know it. */
  maxTurns?: number;
  query: string;
  /** The blocks the last response ran, in order; empty when it had no code. */
  outputs: ReadonlyArray<{ result: ExecuteResult }>;
  /** Something else the model must hear, after the outputs (e.g. why its plain-text `FINAL_VAR` failed). */
  note?: string;
  /** Characters of each block's output to keep; {@link DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS} unless given. */
  outputLimitChars?: number;
  /** False in a run without sub-calls: the message then does not mention querying sub-LLMs. Default true. */
  subcalls?: boolean;
}

/** Text for a response that had neither a ```repl block nor a final answer. */
export const NO_CODE_NUDGE =
  'Your last response had no ```repl block and no final answer, so nothing ran. Use the REPL: write code in a ```repl block to examine the context and work towards the answer. If you are done, give the answer with FINAL(your answer) at the start of a line, or call FINAL / FINAL_VAR from code.';

/**
 * The user message that starts turn `turn` ≥ 2: the output of each block the last response ran
 * (each cut to `outputLimitChars`, see {@link formatBlockOutput}), the note if any — or
 * {@link NO_CODE_NUDGE} when there is neither — then the turn number and the query.
 */
export function buildTurnMessage(options: TurnMessageOptions): string {
  const limit = options.outputLimitChars ?? DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS;
  const total = options.outputs.length;
  const parts = options.outputs.map(({ result }, i) => `REPL output of block ${i + 1} of ${total}:\n${formatBlockOutput(result, limit)}`);
  const note = options.note?.trim();
  if (note) parts.push(note);
  const outputs = parts.length === 0 ? NO_CODE_NUDGE : parts.join('\n\n');
  const turn = options.maxTurns === undefined ? `Turn ${options.turn}.` : `Turn ${options.turn} of ${options.maxTurns}.`;
  return `${outputs}

${turn} The history above is your previous interaction with the REPL environment. Think step by step about what to do next to answer the original query: ${quoted(options.query)}

Continue using the REPL environment, which holds the context, ${options.subcalls === false ? '' : 'and querying sub-LLMs '}by writing \`\`\`repl blocks, and determine your answer. Your next action:`;
}

/**
 * Asks the root model to summarise the conversation so far, when it nears the model's context
 * window; the summary then stands in for the turns it covers (see {@link buildCompactedContinuation}).
 */
export function buildCompactionRequest(): string {
  return `Your conversation is about to outgrow your context window, so it will be replaced by a summary that you write now. Do not write any code in this response. Summarize, for yourself, everything you need to carry on:
1. the query and what a complete answer needs;
2. what you have found so far, with the key facts, numbers and quotes;
3. the REPL variables that hold your intermediate results, and what each holds;
4. what you have tried that did not work;
5. your plan for the next steps.
Your REPL variables stay as they are, and the full conversation will be readable in the REPL as \`history\`.`;
}

/**
 * The user message after a compaction's summary: the turn goes on, the variables are intact, and
 * the full conversation is in the REPL variable `history`.
 */
export function buildCompactedContinuation(options: { turn: number; query?: string }): string {
  const query = options.query === undefined ? 'the original query' : `the original query: ${quoted(options.query)}`;
  return `The conversation before this point was replaced by your summary above. Your REPL variables are intact, and the full conversation is readable in the REPL as \`history\` (an array of { role, content }). This is turn ${options.turn}. Continue working on ${query}, writing \`\`\`repl blocks. Your next action:`;
}

/**
 * The last call when the turns run out: asks for the best answer now, as `FINAL(...)` in plain text.
 */
export function buildFinalAnswerRequest(options: { query?: string } = {}): string {
  const query = options.query === undefined ? 'the original query' : `the original query: ${quoted(options.query)}`;
  return `You have used all your turns: no more code will run. Based on everything you have found so far, give your best final answer to ${query}. Write it now as FINAL(your answer) at the start of a line, in plain text and not in a code block (or FINAL_VAR(name) for a variable you have already created).`;
}

/**
 * One block's result as the model reads it: stdout, the last expression's value (after `→`),
 * stderr, the error with its stack, and notes for a timeout or a restarted REPL; `(no output)`
 * when there is none of these. Longer than `limitChars` characters, it keeps its beginning and its
 * end (where an error is) and says in a marker how many characters were cut from the middle; the
 * marker comes on top of the `limitChars` characters kept.
 */
export function formatBlockOutput(result: ExecuteResult, limitChars: number = DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS): string {
  const sections: string[] = [];
  const stdout = result.stdout.text.replace(/\n+$/, '');
  if (stdout !== '') sections.push(stdout);
  if (result.value !== undefined) sections.push(`→ ${result.value}`);
  const stderr = result.stderr.text.replace(/\n+$/, '');
  if (stderr !== '') sections.push(`[stderr]\n${stderr}`);
  if (result.error) {
    const stack = result.error.stack.map((frame) => `    ${frame}`).join('\n');
    sections.push(`[error] ${result.error.type}: ${result.error.message}${stack === '' ? '' : `\n${stack}`}`);
  }
  if (result.status === 'timeout' && result.error?.type !== 'TimeoutError') {
    sections.push('[timeout] The cell ran past its time limit and was stopped; the variables defined before that point are kept.');
  }
  if (result.stateLost) {
    sections.push(
      '[REPL restarted] The REPL had to be restarted during this cell: every variable you defined is gone; the context variables were loaded again.',
    );
  }
  const text = sections.length === 0 ? '(no output)' : sections.join('\n');
  return truncateMiddle(text, limitChars);
}

function truncateMiddle(text: string, limitChars: number): string {
  if (text.length <= limitChars) return text;
  const limit = Math.max(0, Math.floor(limitChars));
  const tail = Math.min(2_000, Math.floor(limit / 4));
  const head = limit - tail;
  // Never split a surrogate pair: a lone surrogate is not valid text for a provider's API.
  const headEnd = isHighSurrogate(text.charCodeAt(head - 1)) ? head - 1 : head;
  const tailStart = isLowSurrogate(text.charCodeAt(text.length - tail)) ? text.length - tail + 1 : text.length - tail;
  const cut = tailStart - headEnd;
  return `${text.slice(0, headEnd)}\n… [${count(cut)} characters cut here] …\n${text.slice(tailStart)}`;
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;
