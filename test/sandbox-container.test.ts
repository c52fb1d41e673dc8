/**
 * The sandbox against a real Docker engine: isolation, limits, the REPL contract across the
 * container boundary for JavaScript and Python (one table of cases), timeouts, memory exhaustion
 * and context loading.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { READ_ONLY_ROOT_PROBE } from './support/isolation-probes.js';
import { AbortedError, InvalidOptionError, Sandbox, SandboxClosedError, createDockerClient, type JsonValue, type Language, type SubcallParams } from 'rlm';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';

const docker = createDockerClient();
const image = inject('sandboxImage');

async function inspect(sandbox: Sandbox) {
  return docker.getContainer(sandbox.containerId ?? '').inspect();
}

describe('an isolated sandbox', () => {
  let sandbox: Sandbox;
  let decoy: Server;
  let decoyPort: number;
  let decoyConnections = 0;

  beforeAll(async () => {
    decoy = createServer((socket) => {
      decoyConnections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => decoy.listen(0, '127.0.0.1', resolve));
    decoyPort = (decoy.address() as { port: number }).port;
    // Limits other than the defaults, so the inspect test below can tell they were applied.
    sandbox = await Sandbox.create({
      docker,
      image,
      startTimeoutMs: TEST_START_TIMEOUT_MS,
      limits: { memoryBytes: 512 * 1024 * 1024, cpus: 0.5, pids: 64, tmpfsBytes: 16 * 1024 * 1024 },
    });
  });

  afterAll(async () => {
    await sandbox?.close();
    decoy?.close();
  });

  async function run(code: string) {
    const result = await sandbox.execute(code, { timeoutMs: 30_000 });
    expect(result.error, `cell failed: ${result.error?.message}`).toBeNull();
    return result;
  }

  it('has no network interface but loopback', async () => {
    const result = await run(`Object.keys(require('node:os').networkInterfaces())`);
    expect(JSON.parse(result.value?.replaceAll("'", '"') ?? 'null')).toEqual(['lo']);
  });

  it("cannot reach a port listening on the host's loopback", async () => {
    const result = await run(`
      await new Promise((resolve) => {
        const s = require('node:net').connect({ host: '127.0.0.1', port: ${decoyPort} });
        s.on('connect', () => { print('connected'); s.destroy(); resolve(); });
        s.on('error', (e) => { print(e.code); resolve(); });
      });
    `);
    expect(result.stdout.text.trim()).toBe('ECONNREFUSED');
    expect(decoyConnections).toBe(0);
  });

  it('has a read-only root filesystem and a writable, noexec /tmp', async () => {
    const result = await run(READ_ONLY_ROOT_PROBE);
    expect(result.stdout.text.trim().split('\n')).toEqual(['EROFS', 'ok', 'noexec']);
  });

  it('runs as a non-root user with no capabilities, no-new-privileges and a seccomp filter', async () => {
    const result = await run(`
      const status = require('node:fs').readFileSync('/proc/self/status', 'utf8');
      const field = (n) => status.match(new RegExp('^' + n + ':\\\\s*(.*)$', 'm'))[1];
      print(process.getuid(), process.getgid(), field('CapEff'), field('CapBnd'), field('NoNewPrivs'), field('Seccomp'));
    `);
    const [uid, gid, capEff, capBnd, noNewPrivs, seccomp] = result.stdout.text.trim().split(' ');
    expect(Number(uid)).toBe(10001);
    expect(Number(gid)).toBe(10001);
    expect(capEff).toMatch(/^0+$/);
    expect(capBnd).toMatch(/^0+$/);
    expect(noNewPrivs).toBe('1');
    expect(seccomp).toBe('2');
  });

  it('sees none of the host environment, no Docker socket and no shell', async () => {
    process.env.RLM_TEST_SECRET_API_KEY = 'sk-must-not-leak';
    const result = await run(`
      const fs = require('node:fs');
      print(JSON.stringify({
        env: process.env,
        docker: ['/var/run/docker.sock', '/run/docker.sock'].filter((p) => fs.existsSync(p)),
        shells: ['/bin/sh', '/bin/bash', '/usr/bin/env', '/bin/busybox'].filter((p) => fs.existsSync(p)),
      }));
    `);
    const seen = JSON.parse(result.stdout.text) as { env: Record<string, string>; docker: string[]; shells: string[] };
    // Docker itself sets PATH, HOSTNAME and HOME (from the image's passwd); nothing comes from the host.
    expect(Object.keys(seen.env).filter((k) => !['PATH', 'HOSTNAME', 'HOME'].includes(k))).toEqual([]);
    expect(seen.env.HOME).toBe('/nonexistent');
    expect(JSON.stringify(seen.env)).not.toContain('sk-must-not-leak');
    expect(seen.docker).toEqual([]);
    expect(seen.shells).toEqual([]);
  });

  it('applies the configured memory, CPU and pids limits and the hardening options, visible in docker inspect', async () => {
    const info = await inspect(sandbox);
    const host = info.HostConfig;
    expect(host.Memory).toBe(512 * 1024 * 1024);
    expect(host.MemorySwap).toBe(512 * 1024 * 1024);
    expect(host.NanoCpus).toBe(500_000_000);
    expect(host.PidsLimit).toBe(64);
    expect(host.NetworkMode).toBe('none');
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.SecurityOpt).toContain('no-new-privileges:true');
    expect(host.SecurityOpt?.some((o: string) => o.includes('unconfined'))).toBe(false);
    expect(host.Privileged).toBe(false);
    expect(host.AutoRemove).toBe(true);
    expect(host.Tmpfs?.['/tmp']).toContain(`size=${16 * 1024 * 1024}`);
    expect(info.Config.User).toBe('10001:10001');
    expect(info.Config.Labels?.['rlm.sandbox']).toMatch(/:\d+:\d+$/);
  });

  it('mounts only the context and the control directory, both read-only', async () => {
    const info = await inspect(sandbox);
    const mounts = info.Mounts.map((m) => `${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort();
    expect(mounts).toEqual(['/context:ro', '/run/rlm:ro']);
    const result = await run(`
      try { require('node:fs').writeFileSync('/context/x', 'x'); print('writable'); } catch (e) { print(e.code); }
    `);
    expect(result.stdout.text.trim()).toBe('EROFS');
  });

  it('refuses a second connection to its control socket and keeps serving the first', async () => {
    // Done once the host's close frame (0x88) arrives; the host waits for the peer's close frame
    // before it drops the socket, so this end drops it.
    const result = await run(`
      const net = require('node:net');
      const { randomBytes } = require('node:crypto');
      await new Promise((resolve) => {
        const s = net.connect('/run/rlm/control.sock');
        let reply = '';
        s.on('connect', () => s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: ' + randomBytes(16).toString('base64') + '\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'));
        s.on('data', (d) => { reply += d.toString('latin1'); if (/\\r\\n\\r\\n\\x88/.test(reply)) s.destroy(); });
        s.on('close', () => { print(reply.split('\\r\\n')[0]); print(/\\r\\n\\r\\n\\x88/.test(reply) ? 'closed by host' : 'no close frame'); resolve(); });
      });
    `);
    expect(result.stdout.text).toContain('101');
    expect(result.stdout.text).toContain('closed by host');
    expect((await run('1 + 1')).value).toBe('2');
  });
});

/**
 * The REPL contract across the container boundary, once per language: each case is written once
 * and runs the cells this table gives for JavaScript and for Python.
 */
interface LanguageCells {
  /** Defines `greeting` and a class `Box` holding a value in `.v`. */
  defineState: string;
  /** Prints llm_query(greeting, model "small"). */
  singleQuery: string;
  /** llm_query_batched(["a", "fail", "c"]) joined with " | ", as the value. */
  batchedQuery: string;
  /** Box(rlm_query("deep")).v as the value. */
  rlmQuery: string;
  /** Prints "out" to stdout and "err" to stderr. */
  streams: string;
  /** Prints 1000 "x" forever. */
  outputFlood: string;
  /** Line 1 defines a function `fails` that throws on its line 2; line 3 calls it. */
  throwing: string;
  /** The error type `throwing` raises. */
  thrownType: string;
  /** The stack frames expected from `throwing` in cell `n`. */
  thrownStack: (n: number) => string[];
  finalValue: string;
  finalVarMissing: string;
  finalVar: string;
  showVars: string;
  /** Prints [type of context, its line count, context_1, the keys of context_2, len(context_3.items), context_3.nested.ok] as JSON. */
  contextTypes: string;
  /** context's length and its last 10 characters, as "<length> <tail>". */
  bigContext: string;
  defineKept: string;
  runaway: string;
  readKept: string;
  /** A lookup_customer call with JSON args and a failing crm_status call caught, printed as JSON {rows, isArray, failure}. */
  tools: string;
}

const CELLS: Record<Language, LanguageCells> = {
  javascript: {
    defineState: 'const greeting = "hello"; class Box { constructor(v) { this.v = v } }',
    singleQuery: 'const one = llm_query(greeting, { model: "small" }); print(one)',
    batchedQuery: 'llm_query_batched(["a", "fail", "c"]).join(" | ")',
    rlmQuery: 'new Box(await rlm_query("deep")).v',
    streams: 'print("out"); console.error("err")',
    outputFlood: 'while (true) print("x".repeat(1000))',
    throwing: 'function fails() {\n  throw new RangeError("too far");\n}\nfails()',
    thrownType: 'RangeError',
    thrownStack: (n) => [`at fails (cell ${n}, line 2:9)`, `at cell ${n}, line 4:1`],
    finalValue: 'FINAL({ answer: 42 })',
    finalVarMissing: 'FINAL_VAR("nope")',
    finalVar: 'const result = "the answer"; FINAL_VAR("result")',
    showVars: 'SHOW_VARS()',
    contextTypes:
      'print(JSON.stringify([typeof context, context.split("\\n").length, context_1, Object.keys(context_2), context_3.items.length, context_3.nested.ok]))',
    bigContext: 'context.length + " " + context.slice(-10)',
    defineKept: 'let kept = 42',
    runaway: 'while (true) {}',
    readKept: 'String(kept)',
    tools:
      'const found = lookup_customer("c-42", { fields: ["name"] });\n' +
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the cell's code holds a template literal
      'let failure; try { crm_status() } catch (e) { failure = `${e.name}: ${e.message}` }\n' +
      'print(JSON.stringify({ rows: found.rows, isArray: Array.isArray(found.rows), failure }))',
  },
  python: {
    defineState: 'greeting = "hello"\nclass Box:\n    def __init__(self, v):\n        self.v = v',
    singleQuery: 'one = llm_query(greeting, model="small")\nprint(one)',
    batchedQuery: '" | ".join(llm_query_batched(["a", "fail", "c"]))',
    rlmQuery: 'Box(rlm_query("deep")).v',
    streams: 'import sys\nprint("out")\nprint("err", file=sys.stderr)',
    outputFlood: 'while True: print("x" * 1000)',
    throwing: 'def fails():\n    raise ValueError("too far")\nfails()',
    thrownType: 'ValueError',
    thrownStack: (n) => [`File "<cell ${n}>", line 2, in fails`, `File "<cell ${n}>", line 3, in <module>`],
    finalValue: 'FINAL({"answer": 42})',
    finalVarMissing: 'FINAL_VAR("nope")',
    finalVar: 'result = "the answer"\nFINAL_VAR("result")',
    showVars: 'SHOW_VARS()',
    contextTypes:
      'print(json.dumps([type(context).__name__, len(context.split("\\n")), context_1, list(context_2), len(context_3["items"]), context_3["nested"]["ok"]]))',
    bigContext: 'f"{len(context)} {context[-10:]}"',
    defineKept: 'kept = 42',
    runaway: 'while True: pass',
    readKept: 'str(kept)',
    tools:
      'found = lookup_customer("c-42", {"fields": ["name"]})\n' +
      'try:\n    crm_status()\nexcept Exception as e:\n    failure = f"{type(e).__name__}: {e}"\n' +
      'print(json.dumps({"rows": found["rows"], "isArray": isinstance(found["rows"], list), "failure": failure}))',
  },
};

describe.each(['javascript', 'python'] as const)('the %s REPL across the container boundary', (language) => {
  const cells = CELLS[language];
  const calls: SubcallParams[] = [];
  const toolCalls: JsonValue[][] = [];
  let sandbox: Sandbox;
  let cellNumber = 0;
  const execute = (code: string, options: { timeoutMs?: number; outputLimitChars?: number } = {}) => {
    cellNumber += 1;
    return sandbox.execute(code, { timeoutMs: 10_000, ...options });
  };

  beforeAll(async () => {
    sandbox = await Sandbox.create({
      docker,
      image,
      startTimeoutMs: TEST_START_TIMEOUT_MS,
      language,
      onSubcall: async (request) => {
        calls.push(request);
        return {
          outcomes: request.prompts.map((p, i) =>
            p === 'fail' ? { ok: false as const, error: 'model down' } : { ok: true as const, text: `answer ${i}: ${p.toUpperCase()}` },
          ),
        };
      },
      tools: {
        lookup_customer: {
          handler: ([id, options]) => {
            toolCalls.push([id ?? null, options ?? null]);
            return { rows: ((options as { fields?: string[] } | null)?.fields ?? []).map((field) => ({ field, value: `${field} of ${String(id)}` })) };
          },
        },
        crm_status: {
          handler: () => {
            throw new Error('the CRM is down');
          },
        },
      },
    });
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  it('keeps state across cells and answers llm_query, llm_query_batched and rlm_query through the host', async () => {
    expect((await execute(cells.defineState)).error).toBeNull();
    const single = await execute(cells.singleQuery);
    expect(single.stdout.text).toBe('answer 0: HELLO\n');
    const batch = await execute(cells.batchedQuery);
    expect(batch.value).toBe("'answer 0: A | Error: model down | answer 2: C'");
    const deep = await execute(cells.rlmQuery);
    expect(deep.value).toBe("'answer 0: DEEP'");
    expect(calls.map((c) => [c.kind, c.batched, c.model ?? null, c.prompts])).toEqual([
      ['llm_query', false, 'small', ['hello']],
      ['llm_query', true, null, ['a', 'fail', 'c']],
      ['rlm_query', false, null, ['deep']],
    ]);
  });

  it('captures stdout and stderr apart', async () => {
    const result = await execute(cells.streams);
    expect(result.stdout).toEqual({ text: 'out\n', truncatedChars: 0 });
    expect(result.stderr).toEqual({ text: 'err\n', truncatedChars: 0 });
  });

  it("reports an error's type and a stack of the cell's own lines", async () => {
    const result = await execute(cells.throwing);
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe(cells.thrownType);
    expect(result.error?.message).toBe('too far');
    expect(result.error?.stack).toEqual(cells.thrownStack(cellNumber));
  });

  it('ends with FINAL and FINAL_VAR; a missing variable lists the variables and ends nothing; SHOW_VARS lists them', async () => {
    expect((await execute(cells.finalValue)).final).toEqual({ value: '{\n  "answer": 42\n}', via: 'FINAL' });
    const missing = await execute(cells.finalVarMissing);
    expect(missing.final).toBeNull();
    expect(missing.stderr.text).toMatch(/^FINAL_VAR: no variable named "nope"\. Variables: .*greeting/);
    expect((await execute(cells.finalVar)).final).toEqual({ value: 'the answer', via: 'FINAL_VAR', variable: 'result' });
    expect((await execute(cells.showVars)).stdout.text).toMatch(/^Variables:\n(?:.*\n)* {2}result: (string|str)\n/);
  });

  it('calls custom tools synchronously with JSON arguments; a failing tool is a ToolError', async () => {
    const result = await execute(cells.tools);
    expect(result.error).toBeNull();
    expect(JSON.parse(result.stdout.text)).toEqual({
      rows: [{ field: 'name', value: 'name of c-42' }],
      isArray: true,
      failure: 'ToolError: crm_status failed: the CRM is down',
    });
    expect(toolCalls).toEqual([['c-42', { fields: ['name'] }]]);
    // The tools are the REPL's, not the user's variables.
    const variables = result.variables.map(({ name }) => name);
    expect(variables).toEqual(expect.arrayContaining(['found', 'failure']));
    expect(variables).not.toContain('lookup_customer');
    expect(variables).not.toContain('crm_status');
  });

  it('binds a string, a list, a path map and a JSON value as the REPL contract says', async () => {
    await sandbox.loadContext('plain text\nsecond line');
    await sandbox.loadContext(['first', 'second'], { variable: 'context_1' });
    await sandbox.loadContext({ 'docs/a.md': '# A', 'docs/b.md': '# B' }, { variable: 'context_2' });
    await sandbox.loadContext({ count: 3, items: [1, 2, 3], nested: { ok: true } }, { variable: 'context_3' });
    const result = await execute(cells.contextTypes);
    expect(JSON.parse(result.stdout.text)).toEqual([language === 'javascript' ? 'string' : 'str', 2, ['first', 'second'], ['docs/a.md', 'docs/b.md'], 3, true]);
  });

  // After every test that relies on state from an earlier one: should a loaded machine keep the
  // interpreter from acting on its interrupt in time, the REPL is restarted and state is lost; that
  // fails these two tests, not the ones above.
  it('cuts an endless print loop to the output limit at its timeout and says how much was cut', async () => {
    const result = await execute(cells.outputFlood, { timeoutMs: 1_000, outputLimitChars: 2_000 });
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect(result.stdout.text.length).toBeLessThan(2_200);
    // How much the loop printed before its timeout depends on the machine; that some was cut does not.
    expect(result.stdout.truncatedChars).toBeGreaterThan(0);
    expect(result.stdout.text).toContain(`[... ${result.stdout.truncatedChars.toLocaleString('en-US')} characters truncated ...]`);
  });

  it('interrupts a runaway cell at its timeout and keeps earlier variables', async () => {
    await execute(cells.defineKept);
    const result = await execute(cells.runaway, { timeoutMs: 1_000 });
    expect(result.status).toBe('timeout');
    expect(result.error?.type).toBe('TimeoutError');
    expect(result.stateLost).toBe(false);
    expect((await execute(cells.readKept)).value).toBe("'42'");
  });

  it('makes 100 MB of text available without sending it over the socket', async () => {
    const text = `${'0123456789'.repeat(10 * 1024 * 1024 - 1)}tail-mark!`;
    const loaded = await sandbox.loadContext(text);
    expect(loaded.bytes).toBe(100 * 1024 * 1024);
    const result = await execute(cells.bigContext);
    expect(result.value).toBe(`'${100 * 1024 * 1024} tail-mark!'`);
  });

  it('refuses a cell in the other language, naming the option', async () => {
    const other = language === 'javascript' ? 'python' : 'javascript';
    await expect(sandbox.execute('1', { language: other })).rejects.toThrow(new RegExp(`^language: this sandbox runs ${language} cells, not ${other}`));
  });
});

describe('memory exhaustion', () => {
  it('JavaScript: a heap exhausted by a cell is an OutOfMemoryError; the next cell runs with fresh state and the context reloaded', async () => {
    await using sandbox = await Sandbox.create({
      docker,
      image,
      startTimeoutMs: TEST_START_TIMEOUT_MS,
      context: 'the context',
      limits: { memoryBytes: 512 * 1024 * 1024 },
    });
    await sandbox.execute('const before = 1');
    const result = await sandbox.execute('const hog = []; while (true) hog.push(new Array(1e6).fill(Math.random()))', { timeoutMs: 60_000 });
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('OutOfMemoryError');
    expect(result.stateLost).toBe(true);
    const after = await sandbox.execute('typeof before + " " + context');
    expect(after.value).toBe("'undefined the context'");
  });

  it("Python: the interpreter's memory is capped below the container's, so a hog is a MemoryError and the state survives", async () => {
    await using sandbox = await Sandbox.create({
      docker,
      image,
      startTimeoutMs: TEST_START_TIMEOUT_MS,
      language: 'python',
      context: 'the context',
      limits: { memoryBytes: 512 * 1024 * 1024 },
    });
    await sandbox.execute('before = 1');
    const result = await sandbox.execute('hog = []\nwhile True: hog.append(bytearray(16 * 1024 * 1024))', { timeoutMs: 60_000 });
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('MemoryError');
    expect(result.stateLost).toBe(false);
    const after = await sandbox.execute('del hog\nf"{before} {context}"');
    expect(after.value).toBe("'1 the context'");
    expect(sandbox.restarts).toBe(0);
  });

  it('replaces a container killed for exceeding its memory limit and says the state was lost', async () => {
    await using sandbox = await Sandbox.create({
      docker,
      image,
      startTimeoutMs: TEST_START_TIMEOUT_MS,
      context: ['a', 'b'],
      limits: { memoryBytes: 256 * 1024 * 1024 },
    });
    const firstContainer = sandbox.containerId;
    // Buffers live outside the V8 heap, so only the kernel's limit stops them.
    const result = await sandbox.execute('const bufs = []; while (true) bufs.push(Buffer.alloc(32 * 1024 * 1024, 1))', { timeoutMs: 60_000 });
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('OutOfMemoryError');
    expect(result.error?.message).toMatch(/256 MiB/);
    expect(result.stateLost).toBe(true);
    const after = await sandbox.execute('context.join("+")');
    expect(after.value).toBe("'a+b'");
    expect(sandbox.containerId).not.toBe(firstContainer);
    expect(sandbox.restarts).toBe(1);
  });
});

describe('sandbox lifecycle', () => {
  it('closes idempotently, removes its container, and refuses work afterwards', async () => {
    const sandbox = await Sandbox.create({ docker, image, startTimeoutMs: TEST_START_TIMEOUT_MS });
    const id = sandbox.containerId ?? '';
    await Promise.all([sandbox.close(), sandbox.close()]);
    await sandbox.close();
    await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(sandbox.execute('1')).rejects.toBeInstanceOf(SandboxClosedError);
  });

  it('stops a running cell and removes the sandbox when the caller aborts', async () => {
    const controller = new AbortController();
    // The cell's llm_query reaching the host says it runs: abort then.
    const sandbox = await Sandbox.create({
      docker,
      image,
      startTimeoutMs: TEST_START_TIMEOUT_MS,
      onSubcall: async (request) => {
        controller.abort();
        return { outcomes: request.prompts.map(() => ({ ok: true as const, text: 'go on' })) };
      },
    });
    const id = sandbox.containerId ?? '';
    await expect(sandbox.execute('llm_query("running"); while (true) {}', { timeoutMs: 60_000, signal: controller.signal })).rejects.toBeInstanceOf(
      AbortedError,
    );
    expect(sandbox.isClosed).toBe(true);
    await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('sandbox options', () => {
  it('refuses an OCI runtime the daemon does not have, naming the option and the runtimes it has', async () => {
    const error = await Sandbox.create({ docker, image, startTimeoutMs: TEST_START_TIMEOUT_MS, runtime: 'no-such-runtime' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).message).toMatch(/^runtime: .*no-such-runtime.*runc/);
  });

  it('refuses a non-positive cell timeout before starting anything', async () => {
    await expect(Sandbox.create({ docker, image, startTimeoutMs: TEST_START_TIMEOUT_MS, cellTimeoutMs: 0 })).rejects.toThrow(
      /^cellTimeoutMs: must be a positive integer/,
    );
  });
});
