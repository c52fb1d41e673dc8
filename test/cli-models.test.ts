/**
 * Named models through the built `rlm` command, as a user would configure them: `models:` in the
 * config file and `--model-alias` on the command line, against a local server speaking the OpenAI
 * protocol, with real sandboxes. The root, the sub-calls and a child RLM each run on a different
 * model; `rlm doctor` lists them.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../orchestrator/src/testing/fake-openai-server.js';
import { cleanEnv, runRlm } from './support/rlm-process.js';

const fence = (code: string) => `Let me look.\n\`\`\`repl\n${code}\n\`\`\``;
const KEY = 'sk-test-models-key';

const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

/** A config file naming the child's model, with a price of its own (the model id is in no table). */
async function configDir(server: FakeOpenAIServer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-models-'));
  await writeFile(
    path.join(dir, 'rlm.config.yaml'),
    [
      'root:',
      '  backend: openai',
      `  baseURL: ${server.baseURL}`,
      '  model: gpt-5-mini',
      'models:',
      '  child:',
      '    model: house-model-1',
      '    price: { input: 1, output: 2 }',
      '  cheap:',
      // Replaced whole by --model-alias cheap=… in the run below.
      '    model: not-this-one',
      '',
    ].join('\n'),
  );
  return dir;
}

interface UsageEntry {
  calls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number | null;
}

describe('named models', () => {
  it('runs the root, llm_query and a child RLM on three models named in the config file and by --model-alias; usage lists all three', async () => {
    const server = await startFakeOpenAIServer((body) => {
      switch (body.model) {
        case 'gpt-5-mini':
          return fence(
            [
              'const sub = llm_query("say hi", { model: "cheap" });',
              'const child = rlm_query("child task", { model: "child" });',
              'const unknown = llm_query("x", { model: "nope" });',
              'FINAL(JSON.stringify({ sub, child, unknown }));',
            ].join('\n'),
          );
        case 'gpt-5-nano':
          return 'hi from the cheap model';
        case 'house-model-1':
          // The child RLM's root: its context is the prompt rlm_query gave it.
          return fence('FINAL("child saw: " + context)');
        default:
          return `unexpected model ${body.model}`;
      }
    });
    servers.push(server);
    const dir = await configDir(server);

    const result = await runRlm(['what happened?', '--context', 'x', '--model-alias', 'cheap=openai:gpt-5-nano', '--json'], {
      cwd: dir,
      env: cleanEnv({ OPENAI_API_KEY: KEY }),
    });
    expect(result.code, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as { answer: string; usage: Record<string, UsageEntry> };
    const answer = JSON.parse(json.answer) as { sub: string; child: string; unknown: string };
    expect(answer.sub).toBe('hi from the cheap model');
    expect(answer.child).toBe('child saw: child task');
    // A name nothing configures is an error string for that call, listing the names that are.
    expect(answer.unknown).toMatch(/^Error: model "nope" is not configured for this run; configured models: /);
    for (const name of ['gpt-5-mini', 'child', 'cheap']) expect(answer.unknown).toContain(name);

    expect(Object.keys(json.usage).sort()).toEqual(['gpt-5-mini', 'gpt-5-nano', 'house-model-1']);
    expect(json.usage['gpt-5-mini']?.calls).toBe(1);
    expect(json.usage['gpt-5-nano']?.calls).toBe(1);
    expect(json.usage['house-model-1']?.calls).toBe(1);
    // The config file's price for the child's model id is the one its cost is computed with.
    const child = json.usage['house-model-1'] as UsageEntry;
    expect(child.costUsd).toBeCloseTo((child.inputTokens * 1 + child.outputTokens * 2) / 1e6, 12);

    // Every model reached the root's server with the root's key: the alias and the entry inherit both.
    expect(server.requests.map((r) => r.model).sort()).toEqual(['gpt-5-mini', 'gpt-5-nano', 'house-model-1']);
    expect(server.received.map((r) => r.headers.authorization)).toEqual(Array(3).fill(`Bearer ${KEY}`));
  });

  it('refuses a malformed --model-alias with the form that works, exit 2', async () => {
    const result = await runRlm(['q', '--context', 'x', '--backend', 'openai', '--model-alias', 'cheap=opnai:gpt-5-nano'], {
      env: cleanEnv({ OPENAI_API_KEY: KEY }),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^rlm: --model-alias cheap=opnai:gpt-5-nano: unknown backend "opnai" \(did you mean "openai"\?\); write NAME=BACKEND:MODEL/);
  });

  it('names the file and key path of a bad models: entry, exit 2', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-models-'));
    await writeFile(path.join(dir, 'rlm.config.yaml'), 'models:\n  cheap:\n    baseUrl: http://127.0.0.1:1/v1\n');
    const result = await runRlm(['q', '--context', 'x'], { cwd: dir, env: cleanEnv({}) });
    expect(result.stderr).toBe('rlm: rlm.config.yaml: models.cheap.baseUrl: unknown key (did you mean "baseURL"?)\n');
    expect(result.code).toBe(2);
  });

  it('rlm doctor lists the root, sub and named models with backend, model id and base URL, and checks each key by name only', async () => {
    const server = await startFakeOpenAIServer(() => 'unused');
    servers.push(server);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-models-'));
    await writeFile(
      path.join(dir, 'rlm.config.yaml'),
      `root:\n  backend: openai\n  baseURL: ${server.baseURL}\n  model: gpt-5-mini\nmodels:\n  child: { model: house-model-1 }\n  fast: { backend: groq, model: llama-3.3-70b-versatile }\n`,
    );
    const result = await runRlm(['doctor', '--json'], { cwd: dir, env: cleanEnv({ OPENAI_API_KEY: KEY }) });
    const report = JSON.parse(result.stdout) as { checks: Array<{ name: string; status: string; detail: string; fix?: string }> };
    const byName = new Map(report.checks.map((check) => [check.name, check]));
    // The check may carry what the model table knows of the model (`model`); an ok check has no fix.
    expect(byName.get('root model')).toMatchObject({
      name: 'root model',
      status: 'ok',
      detail: `openai gpt-5-mini at ${server.baseURL}; key OPENAI_API_KEY is set`,
    });
    expect(byName.get('root model')?.fix).toBeUndefined();
    expect(byName.get('sub model')?.detail).toBe(`openai gpt-5-mini at ${server.baseURL}; key OPENAI_API_KEY is set`);
    expect(byName.get('model child')).toMatchObject({ status: 'ok', detail: `openai house-model-1 at ${server.baseURL}; key OPENAI_API_KEY is set` });
    expect(byName.get('model fast')).toMatchObject({
      status: 'fail',
      detail: 'groq llama-3.3-70b-versatile at https://api.groq.com/openai/v1; key GROQ_API_KEY is not set',
      fix: expect.stringContaining('export GROQ_API_KEY='),
    });
    // A model without its key is a failed check.
    expect(result.code).toBe(1);
    expect(result.stdout).not.toContain(KEY);
  });
});
