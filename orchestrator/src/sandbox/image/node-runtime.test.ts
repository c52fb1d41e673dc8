import { existsSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { elfInterpreter, listLibraries, parseLddOutput } from './node-runtime.js';

describe('parseLddOutput', () => {
  it('lists every library file and the interpreter, skipping the vDSO', () => {
    const glibc = `	linux-vdso.so.1 (0x00007ffd0d5f1000)
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f0245c7d000)
	libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f0245a00000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f024573e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f0245c95000)
`;
    expect(parseLddOutput(glibc)).toEqual([
      '/lib/x86_64-linux-gnu/libdl.so.2',
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });

  it('reads musl output, where libc and the interpreter are one file', () => {
    const musl = `	/lib/ld-musl-x86_64.so.1 (0x7f6f4b0d5000)
	libstdc++.so.6 => /usr/lib/libstdc++.so.6 (0x7f6f4ae00000)
	libc.musl-x86_64.so.1 => /lib/ld-musl-x86_64.so.1 (0x7f6f4b0d5000)
`;
    expect(parseLddOutput(musl)).toEqual(['/lib/ld-musl-x86_64.so.1', '/usr/lib/libstdc++.so.6']);
  });

  it('names a missing library', () => {
    expect(() => parseLddOutput('\tlibfoo.so.1 => not found\n')).toThrow(/libfoo\.so\.1 is not found/);
  });
});

describe('listing the libraries without ldd', () => {
  it('reads the ELF interpreter a dynamic Node binary names', async () => {
    const interpreter = await elfInterpreter(process.execPath);
    expect(interpreter).toMatch(/^\/.*\/ld-(linux|musl)[^/]*\.so\.\d+$/);
    expect(existsSync(interpreter ?? '')).toBe(true);
  });

  it('lists the same libraries through the interpreter where there is no ldd on the PATH (a from-scratch image)', async () => {
    const node = await realpath(process.execPath);
    const withLdd = parseLddOutput((await listLibraries(node)).stdout);
    const emptyDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-no-ldd-'));
    const savedPath = process.env.PATH;
    process.env.PATH = emptyDir;
    try {
      const withoutLdd = parseLddOutput((await listLibraries(node)).stdout);
      expect(withoutLdd).toEqual(withLdd);
      expect(withoutLdd.length).toBeGreaterThan(0);
    } finally {
      process.env.PATH = savedPath;
      await rm(emptyDir, { recursive: true, force: true });
    }
  });

  it('rejects a file that is not ELF', async () => {
    await expect(elfInterpreter(fileURLToPath(import.meta.url))).rejects.toThrow(/no ELF header/);
  });
});
