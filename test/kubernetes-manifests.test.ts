/**
 * deploy/kubernetes/ checked offline, as kubeconform's strict mode would, against the Kubernetes
 * API's own schemas, then for what no schema sees: the references between the objects.
 *
 * The schemas come from `kubernetes-models` (npm; generated from the OpenAPI spec of a recent
 * Kubernetes release, 1.34-era: it has native sidecars' `restartPolicy`, `preStop.sleep`,
 * `ContainerRestartRule`). Each object is checked twice, by the package's two artefacts of the
 * same spec:
 * - its precompiled JSON-schema validator (`model.validate()`, ajv): required fields, types,
 *   formats, enums;
 * - its TypeScript interface (`IDeployment`…), through the TypeScript compiler: the object as an
 *   object literal of that type, so that excess-property checking makes every field the API does
 *   not define an error, at any depth (the validators, like the upstream schemas, allow unknown
 *   fields; kubectl and the API server's strict field validation do not).
 * Tests at the end feed it broken copies (a typo'd field, a wrong type, a missing required field,
 * an unknown kind) to prove it is not vacuous. One test runs the API Deployment's container as it
 * is written (its arguments, its environment, the ConfigMap's file) against a local PostgreSQL.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { RlmConfig } from '../orchestrator/src/cli/config/config-schema.js';
import { parseCommandFlags } from '../orchestrator/src/cli/flags/parse-flags.js';
import { DEFAULT_SANDBOX_LIMITS } from '../orchestrator/src/sandbox/container-spec.js';
import { startPostgres } from './support/postgres.js';
import { cleanEnv, startRlm } from './support/rlm-process.js';
import { listeningUrl } from './support/serve-process.js';

const TEST_DIR = path.dirname(fileURLToPath(import.meta.url));
const MANIFEST_DIR = path.join(TEST_DIR, '..', 'deploy', 'kubernetes');
const NAMESPACE = 'rlm';

/**
 * What a worker pod requests besides its sandboxes (worker-deployment.yaml says the same): the
 * worker process (the `worker` container) and the engine itself (dockerd and containerd, in the
 * `docker` container beside the sandboxes). CPU in millicores, memory in MiB.
 */
const WORKER_PROCESS_OWN = { cpuMilli: 500, memoryMiB: 512 };
const ENGINE_OWN = { cpuMilli: 250, memoryMiB: 256 };
/** `rlm serve`'s --grace-seconds when neither the flag nor `serve.graceSeconds` sets it. */
const DEFAULT_GRACE_SECONDS = 30;
/** `rlm serve`'s --max-sandboxes when neither the flag nor `serve.maxSandboxes` sets it. */
const DEFAULT_MAX_SANDBOXES = 8;

// ---------------------------------------------------------------------------------------------
// The manifests

type Json = Record<string, unknown>;

interface Manifest {
  /** File name in deploy/kubernetes/. */
  file: string;
  /** Document of the file, from 0. */
  index: number;
  object: Json;
}

interface Container {
  name: string;
  image?: string;
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: Json }[];
  envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: Json;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  restartPolicy?: string;
  readinessProbe?: { httpGet?: { path: string } };
  livenessProbe?: { httpGet?: { path: string } };
}

interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; configMap?: { name: string; items?: { key: string; path: string }[] }; secret?: { secretName: string }; emptyDir?: Json }[];
  securityContext?: Json;
  terminationGracePeriodSeconds?: number;
}

interface Deployment {
  metadata: { name: string };
  spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

function where(manifest: Manifest): string {
  const metadata = manifest.object.metadata as { name?: string } | undefined;
  return `${manifest.file}#${manifest.index} (${String(manifest.object.kind)} ${metadata?.name ?? '?'})`;
}

async function manifestFiles(): Promise<string[]> {
  return (await readdir(MANIFEST_DIR)).filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml').sort();
}

async function readKustomization(): Promise<{ namespace?: string; resources?: string[] }> {
  return YAML.parse(await readFile(path.join(MANIFEST_DIR, 'kustomization.yaml'), 'utf8'));
}

/** Every document of every manifest file; a YAML error or an empty document fails. */
async function loadManifests(): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  for (const file of await manifestFiles()) {
    const documents = YAML.parseAllDocuments(await readFile(path.join(MANIFEST_DIR, file), 'utf8'));
    documents.forEach((document, index) => {
      if (document.errors.length > 0) throw new Error(`${file}#${index}: ${document.errors.map((e) => e.message).join('; ')}`);
      const object = document.toJS() as unknown;
      if (object === null || typeof object !== 'object' || Array.isArray(object)) throw new Error(`${file}#${index}: not a Kubernetes object`);
      manifests.push({ file, index, object: object as Json });
    });
  }
  return manifests;
}

// ---------------------------------------------------------------------------------------------
// The validator

/** The module of `kubernetes-models` holding the model of `apiVersion`/`kind`: `apps/v1/Deployment`, `v1/Service`… */
function modelPath(object: Json): string | undefined {
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

type ModelClass = new (data: Json) => { validate(): void };

async function loadModel(specifier: string): Promise<ModelClass | undefined> {
  try {
    const module = (await import(specifier)) as Record<string, unknown>;
    const kind = specifier.slice(specifier.lastIndexOf('/') + 1);
    return typeof module[kind] === 'function' ? (module[kind] as ModelClass) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every problem of `manifests` against the Kubernetes schemas, one line each naming the file, the
 * document and the object; empty when all are valid. A kind without a schema is a problem, not a skip.
 */
async function validateManifests(manifests: readonly Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  const typed: { manifest: Manifest; specifier: string }[] = [];
  for (const manifest of manifests) {
    const specifier = modelPath(manifest.object);
    const Model = specifier === undefined ? undefined : await loadModel(specifier);
    if (specifier === undefined || Model === undefined) {
      problems.push(`${where(manifest)}: no schema for apiVersion ${String(manifest.object.apiVersion)}, kind ${String(manifest.object.kind)}`);
      continue;
    }
    try {
      new Model(manifest.object).validate();
    } catch (error) {
      problems.push(`${where(manifest)}: ${error instanceof Error ? error.message : String(error)}`);
    }
    typed.push({ manifest, specifier });
  }
  problems.push(...unknownFields(typed));
  return problems;
}

/**
 * The fields the API does not define, found by the TypeScript compiler: each object becomes
 * `const mN: I<Kind> = <the object as JSON>` in one in-memory module beside this file (so that it
 * resolves `kubernetes-models` as the test does), and excess-property errors point at the field.
 * Other type errors are reported too (the schema validator usually names them first).
 */
function unknownFields(typed: readonly { manifest: Manifest; specifier: string }[]): string[] {
  if (typed.length === 0) return [];
  const fileName = path.join(TEST_DIR, '__kubernetes_manifests__.ts');
  let source = '';
  const spans: { start: number; end: number; manifest: Manifest }[] = [];
  typed.forEach(({ manifest, specifier }, i) => {
    const start = source.length;
    source += `export const m${i}: import(${JSON.stringify(specifier)}).I${String(manifest.object.kind)} = ${JSON.stringify(manifest.object, null, 1)};\n`;
    spans.push({ start, end: source.length, manifest });
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts'],
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile: hostReadFile } = host;
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName ? ts.createSourceFile(name, source, languageVersion, true) : getSourceFile.call(host, name, languageVersion, ...rest);
  host.fileExists = (name) => name === fileName || fileExists.call(host, name);
  host.readFile = (name) => (name === fileName ? source : hostReadFile.call(host, name));
  const program = ts.createProgram([fileName], options, host);
  const sourceFile = program.getSourceFile(fileName);
  if (sourceFile === undefined) throw new Error('the TypeScript program lost its own source file');
  const diagnostics = [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)];
  return diagnostics.map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n').split('\n')[0];
    const start = diagnostic.start ?? 0;
    const span = spans.find((s) => start >= s.start && start < s.end);
    const at = fieldPath(sourceFile, start);
    return `${span ? where(span.manifest) : fileName}: ${at ? `${at}: ` : ''}${message}`;
  });
}

/** `spec.template.spec.containers[0].resource`: where in its object the node at `position` is. */
function fieldPath(sourceFile: ts.SourceFile, position: number): string {
  let node: ts.Node = sourceFile;
  for (;;) {
    const child: ts.Node | undefined = node.getChildren(sourceFile).find((c) => c.getStart(sourceFile) <= position && position < c.getEnd());
    if (child === undefined) break;
    node = child;
  }
  const parts: string[] = [];
  for (let current: ts.Node | undefined = node; current && !ts.isVariableDeclaration(current); current = current.parent) {
    const parent: ts.Node | undefined = current.parent;
    if (ts.isPropertyAssignment(current)) parts.unshift(`.${(current.name as ts.StringLiteral).text}`);
    else if (parent && ts.isArrayLiteralExpression(parent)) parts.unshift(`[${parent.elements.indexOf(current as ts.Expression)}]`);
  }
  return parts.join('').replace(/^\./, '');
}

// ---------------------------------------------------------------------------------------------
// Reading the objects

function find(manifests: readonly Manifest[], kind: string, name: string): Json | undefined {
  return manifests.find((m) => m.object.kind === kind && (m.object.metadata as { name?: string }).name === name)?.object;
}

function deployment(manifests: readonly Manifest[], name: string): Deployment {
  const object = find(manifests, 'Deployment', name);
  if (!object) throw new Error(`no Deployment ${name}`);
  return object as unknown as Deployment;
}

function container(pod: PodSpec, name: string): Container {
  const found = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name}`);
  return found;
}

function envValue(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

/** The value of `--flag` in `args` (the serve flags take their value as the next argument). */
function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** A CPU quantity in millicores: `4250m`, `1`, `0.5`. */
function cpuMilli(quantity: string | number | undefined): number {
  if (quantity === undefined) return 0;
  const text = String(quantity);
  return text.endsWith('m') ? Number(text.slice(0, -1)) : Math.round(Number(text) * 1000);
}

/** A memory quantity in MiB: `4352Mi`, `4Gi`, `512M`, bytes. */
function memoryMiB(quantity: string | number | undefined): number {
  if (quantity === undefined) return 0;
  const match = /^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity));
  if (!match) throw new Error(`not a memory quantity: ${quantity}`);
  const factor: Record<string, number> = {
    Ki: 1 / 1024,
    Mi: 1,
    Gi: 1024,
    Ti: 1024 ** 2,
    k: 1000 / 1024 ** 2,
    M: 1e6 / 1024 ** 2,
    G: 1e9 / 1024 ** 2,
    T: 1e12 / 1024 ** 2,
  };
  return Number(match[1]) * (match[2] ? (factor[match[2]] as number) : 1 / 1024 ** 2);
}

function isSubset(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** The rlm config file the ConfigMap carries, parsed by rlm's own schema. */
function rlmConfig(manifests: readonly Manifest[]): RlmConfig {
  const configMap = find(manifests, 'ConfigMap', 'rlm-config') as { data?: Record<string, string> } | undefined;
  const text = configMap?.data?.['rlm.config.yaml'];
  if (text === undefined) throw new Error('the ConfigMap rlm-config has no rlm.config.yaml');
  return RlmConfig.parse(YAML.parse(text));
}

// ---------------------------------------------------------------------------------------------

let manifests: Manifest[];

beforeAll(async () => {
  manifests = await loadManifests();
});

describe('deploy/kubernetes against the Kubernetes schemas', () => {
  it('finds every object valid, with no field the API does not define', async () => {
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    expect(await validateManifests(manifests)).toEqual([]);
  });

  it('lists every manifest in kustomization.yaml, in namespace rlm, and every namespaced object says so', async () => {
    const kustomization = await readKustomization();
    expect(kustomization.namespace).toBe(NAMESPACE);
    expect([...(kustomization.resources ?? [])].sort()).toEqual(await manifestFiles());
    for (const manifest of manifests) {
      const metadata = manifest.object.metadata as { name: string; namespace?: string };
      if (manifest.object.kind === 'Namespace') expect(metadata.name, where(manifest)).toBe(NAMESPACE);
      else expect(metadata.namespace, where(manifest)).toBe(NAMESPACE);
    }
  });
});

describe('deploy/kubernetes cross-references', () => {
  it('routes the Service to the API pods: port 80 to their 8080', () => {
    const api = deployment(manifests, 'rlm-api');
    const service = find(manifests, 'Service', 'rlm-api') as {
      spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] };
    };
    expect(isSubset(service.spec.selector, api.spec.template.metadata.labels)).toBe(true);
    // No other Deployment's pods behind it.
    expect(isSubset(service.spec.selector, deployment(manifests, 'rlm-worker').spec.template.metadata.labels)).toBe(false);
    const [port] = service.spec.ports;
    expect(port?.port).toBe(80);
    const target = container(api.spec.template.spec, 'api').ports?.find((p) => p.name === port?.targetPort || p.containerPort === port?.targetPort);
    expect(target?.containerPort).toBe(8080);
  });

  it('gives each Deployment a selector that matches its own pods, and the PDB one that matches the API pods', () => {
    for (const name of ['rlm-api', 'rlm-worker']) {
      const d = deployment(manifests, name);
      expect(isSubset(d.spec.selector.matchLabels, d.spec.template.metadata.labels), name).toBe(true);
    }
    const api = deployment(manifests, 'rlm-api');
    expect(api.spec.replicas).toBe(2);
    const pdb = find(manifests, 'PodDisruptionBudget', 'rlm-api') as { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
    expect(isSubset(pdb.spec.selector.matchLabels, api.spec.template.metadata.labels)).toBe(true);
    // Leaves room for a voluntary eviction.
    expect(pdb.spec.minAvailable).toBeLessThan(api.spec.replicas ?? 1);
  });

  it('names only Secrets, keys, ConfigMaps and variables that exist', () => {
    const problems: string[] = [];
    for (const name of ['rlm-api', 'rlm-worker']) {
      const pod = deployment(manifests, name).spec.template.spec;
      const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const at = `${name}/${c.name}`;
        for (const e of c.env ?? []) {
          const secretRef = (e.valueFrom as { secretKeyRef?: { name: string; key: string } } | undefined)?.secretKeyRef;
          if (secretRef) {
            const secret = find(manifests, 'Secret', secretRef.name) as { stringData?: Record<string, string> } | undefined;
            if (!secret) problems.push(`${at}: env ${e.name} names the missing Secret ${secretRef.name}`);
            else if (!(secretRef.key in (secret.stringData ?? {})))
              problems.push(`${at}: env ${e.name} names the missing key ${secretRef.key} of ${secretRef.name}`);
          }
        }
        for (const from of c.envFrom ?? []) {
          if (from.secretRef && !find(manifests, 'Secret', from.secretRef.name))
            problems.push(`${at}: envFrom names the missing Secret ${from.secretRef.name}`);
          if (from.configMapRef && !find(manifests, 'ConfigMap', from.configMapRef.name))
            problems.push(`${at}: envFrom names the missing ConfigMap ${from.configMapRef.name}`);
        }
        // $(VAR) in the arguments: Kubernetes expands only variables of the container's `env`.
        for (const arg of [...(c.command ?? []), ...(c.args ?? [])]) {
          for (const [, variable] of arg.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
            if (!c.env?.some((e) => e.name === variable)) problems.push(`${at}: argument ${arg} names $(${variable}), which its env does not define`);
          }
        }
        for (const mount of c.volumeMounts ?? []) {
          if (!volumes.has(mount.name)) problems.push(`${at}: mounts the missing volume ${mount.name}`);
        }
      }
      for (const volume of pod.volumes ?? []) {
        if (volume.configMap) {
          const configMap = find(manifests, 'ConfigMap', volume.configMap.name) as { data?: Record<string, string> } | undefined;
          if (!configMap) problems.push(`${name}: volume ${volume.name} names the missing ConfigMap ${volume.configMap.name}`);
          for (const item of volume.configMap.items ?? []) {
            if (!(item.key in (configMap?.data ?? {}))) problems.push(`${name}: volume ${volume.name} names the missing key ${item.key}`);
          }
        }
        if (volume.secret && !find(manifests, 'Secret', volume.secret.secretName)) problems.push(`${name}: volume ${volume.name} names a missing Secret`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('mounts the config file RLM_CONFIG names in every rlm container, and rlm parses it', () => {
    for (const [name, containerName] of [
      ['rlm-api', 'api'],
      ['rlm-worker', 'worker'],
    ] as const) {
      const pod = deployment(manifests, name).spec.template.spec;
      const c = container(pod, containerName);
      const configPath = envValue(c, 'RLM_CONFIG');
      expect(configPath, name).toBeDefined();
      const mount = c.volumeMounts?.find((m) => configPath?.startsWith(`${m.mountPath}/`));
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      expect(mount?.readOnly, name).toBe(true);
      expect(volume?.configMap?.name, name).toBe('rlm-config');
      expect(
        volume?.configMap?.items?.some((item) => path.posix.join(mount?.mountPath ?? '', item.path) === configPath),
        name,
      ).toBe(true);
    }
    expect(() => rlmConfig(manifests)).not.toThrow();
  });

  it('runs `rlm serve` with flags it has: the API as --role api, the workers as --role worker, both on PostgreSQL', () => {
    for (const [name, containerName, role] of [
      ['rlm-api', 'api', 'api'],
      ['rlm-worker', 'worker', 'worker'],
    ] as const) {
      const args = container(deployment(manifests, name).spec.template.spec, containerName).args ?? [];
      expect(args[0], name).toBe('serve');
      // Throws a usage error naming an unknown or malformed flag.
      parseCommandFlags(args.slice(1), 'serve');
      expect(flagValue(args, '--role'), name).toBe(role);
      expect(flagValue(args, '--database'), name).toBe('$(DATABASE_URL)');
    }
    const secret = find(manifests, 'Secret', 'rlm-database') as { stringData: { DATABASE_URL: string } };
    expect(secret.stringData.DATABASE_URL).toMatch(/^postgres(ql)?:\/\//);
  });

  it('gives each pod longer to stop than its --grace-seconds', () => {
    const config = rlmConfig(manifests);
    for (const [name, containerName] of [
      ['rlm-api', 'api'],
      ['rlm-worker', 'worker'],
    ] as const) {
      const pod = deployment(manifests, name).spec.template.spec;
      const args = container(pod, containerName).args ?? [];
      const grace = Number(flagValue(args, '--grace-seconds') ?? config.serve?.graceSeconds ?? DEFAULT_GRACE_SECONDS);
      // 30 s is Kubernetes' default when the field is absent.
      expect(pod.terminationGracePeriodSeconds ?? 30, name).toBeGreaterThan(grace);
    }
  });

  it("requests for each worker pod --max-sandboxes times a sandbox's limits plus the worker's and the engine's own", () => {
    const config = rlmConfig(manifests);
    const pod = deployment(manifests, 'rlm-worker').spec.template.spec;
    const worker = container(pod, 'worker');
    const engine = container(pod, 'docker');
    const maxSandboxes = Number(flagValue(worker.args ?? [], '--max-sandboxes') ?? config.serve?.maxSandboxes ?? DEFAULT_MAX_SANDBOXES);
    const sandboxCpuMilli = Math.round((config.sandbox?.cpus ?? DEFAULT_SANDBOX_LIMITS.cpus) * 1000);
    const sandboxMemoryMiB = config.sandbox?.memoryMb ?? DEFAULT_SANDBOX_LIMITS.memoryBytes / 1024 / 1024;
    expect(maxSandboxes).toBeGreaterThan(0);
    // The sandboxes run inside the engine container's cgroup: it requests them, and its limits
    // (equal to its requests) bound them all even where the engine cannot limit each one.
    const engineCpu = maxSandboxes * sandboxCpuMilli + ENGINE_OWN.cpuMilli;
    const engineMemory = maxSandboxes * sandboxMemoryMiB + ENGINE_OWN.memoryMiB;
    expect(cpuMilli(engine.resources?.requests?.cpu)).toBe(engineCpu);
    expect(memoryMiB(engine.resources?.requests?.memory)).toBe(engineMemory);
    expect(cpuMilli(engine.resources?.limits?.cpu)).toBe(engineCpu);
    expect(memoryMiB(engine.resources?.limits?.memory)).toBe(engineMemory);
    expect(cpuMilli(worker.resources?.requests?.cpu)).toBe(WORKER_PROCESS_OWN.cpuMilli);
    expect(memoryMiB(worker.resources?.requests?.memory)).toBe(WORKER_PROCESS_OWN.memoryMiB);
    // And nothing else in the pod requests anything.
    const all = [...(pod.initContainers ?? []), ...pod.containers];
    expect(all.reduce((sum, c) => sum + cpuMilli(c.resources?.requests?.cpu), 0)).toBe(engineCpu + WORKER_PROCESS_OWN.cpuMilli);
    expect(all.reduce((sum, c) => sum + memoryMiB(c.resources?.requests?.memory), 0)).toBe(engineMemory + WORKER_PROCESS_OWN.memoryMiB);
  });

  it("shares the engine's socket and the sandbox state directory between worker and engine at the same paths, as the engine's user", () => {
    const pod = deployment(manifests, 'rlm-worker').spec.template.spec;
    const worker = container(pod, 'worker');
    const engine = container(pod, 'docker');
    // A native sidecar: it starts before the worker and stops after it.
    expect(pod.initContainers?.map((c) => c.name)).toEqual(['docker']);
    expect(engine.restartPolicy).toBe('Always');
    expect(engine.image).toMatch(/^docker:(.+-)?dind-rootless$/);

    const mountAt = (c: Container, dir: string) => c.volumeMounts?.find((m) => m.mountPath === dir)?.name;
    const socket = envValue(worker, 'DOCKER_HOST');
    expect(socket).toMatch(/^unix:\/\/\/run\/user\/\d+\/docker\.sock$/);
    expect(engine.args).toContain(`--host=${socket}`);
    const socketDir = path.posix.dirname((socket as string).slice('unix://'.length));
    expect(mountAt(worker, socketDir)).toBeDefined();
    expect(mountAt(engine, socketDir)).toBe(mountAt(worker, socketDir));

    const stateDir = envValue(worker, 'XDG_RUNTIME_DIR') as string;
    expect(stateDir).toBeDefined();
    // rootlesskit replaces /run in the engine's namespace with symbolic links: not there.
    expect(stateDir.startsWith('/run/')).toBe(false);
    expect(mountAt(worker, stateDir)).toBeDefined();
    expect(mountAt(engine, stateDir)).toBe(mountAt(worker, stateDir));

    const uid = Number(/\/run\/user\/(\d+)\//.exec(socket as string)?.[1]);
    const runAsUser = (c: Container) => (c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser) as number | undefined;
    expect(runAsUser(worker)).toBe(uid);
    expect(runAsUser(engine)).toBe(uid);
  });

  it('hardens every container: non-root, read-only root, no privilege escalation, no capabilities; only the engine is privileged', () => {
    for (const name of ['rlm-api', 'rlm-worker']) {
      const pod = deployment(manifests, name).spec.template.spec;
      expect((pod as { automountServiceAccountToken?: boolean }).automountServiceAccountToken, name).toBe(false);
      expect(pod.securityContext?.runAsNonRoot, name).toBe(true);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const at = `${name}/${c.name}`;
        const security = c.securityContext as {
          privileged?: boolean;
          readOnlyRootFilesystem?: boolean;
          allowPrivilegeEscalation?: boolean;
          capabilities?: { drop?: string[] };
        };
        if (c.name === 'docker') {
          expect(security.privileged, at).toBe(true);
          continue;
        }
        expect(security.privileged ?? false, at).toBe(false);
        expect(security.readOnlyRootFilesystem, at).toBe(true);
        expect(security.allowPrivilegeEscalation, at).toBe(false);
        expect(security.capabilities?.drop, at).toContain('ALL');
      }
    }
  });

  it('lets the API reach only PostgreSQL and DNS, and the workers PostgreSQL, DNS and HTTPS', () => {
    const policies = manifests.filter((m) => m.object.kind === 'NetworkPolicy').map((m) => m.object as { spec: NetworkPolicySpec });
    interface NetworkPolicySpec {
      podSelector: { matchLabels?: Record<string, string> };
      policyTypes: string[];
      egress?: { ports?: { port: number }[] }[];
    }
    const egressPorts = (name: string) => {
      const labels = deployment(manifests, name).spec.template.metadata.labels;
      const selecting = policies.filter((p) => isSubset(p.spec.podSelector.matchLabels ?? {}, labels));
      // Every policy that selects the pods restricts egress, and no rule allows every port.
      for (const policy of selecting) expect(policy.spec.policyTypes).toEqual(expect.arrayContaining(['Ingress', 'Egress']));
      const rules = selecting.flatMap((p) => p.spec.egress ?? []);
      for (const rule of rules) expect(rule.ports?.length ?? 0, `${name}: an egress rule without ports allows every port`).toBeGreaterThan(0);
      return [...new Set(rules.flatMap((rule) => (rule.ports ?? []).map((p) => p.port)))].sort((a, b) => a - b);
    };
    // A default deny for anything else in the namespace.
    expect(policies.some((p) => Object.keys(p.spec.podSelector.matchLabels ?? {}).length === 0 && (p.spec.egress ?? []).length === 0)).toBe(true);
    expect(egressPorts('rlm-api')).toEqual([53, 5432]);
    expect(egressPorts('rlm-worker')).toEqual([53, 443, 5432]);
    const databasePort = Number(new URL((find(manifests, 'Secret', 'rlm-database') as { stringData: { DATABASE_URL: string } }).stringData.DATABASE_URL).port);
    expect(databasePort).toBe(5432);
  });

  it('holds only placeholders in the Secrets, never a key', () => {
    const secrets = manifests.filter((m) => m.object.kind === 'Secret');
    expect(secrets.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      const { data, stringData } = secret.object as { data?: unknown; stringData?: Record<string, string> };
      // Base64 `data` could hide anything.
      expect(data, where(secret)).toBeUndefined();
      for (const [key, value] of Object.entries(stringData ?? {})) expect(value, `${where(secret)} ${key}`).toContain('CHANGE-ME');
    }
  });
});

describe('the manifest validator', () => {
  /** A copy of the manifests with `change` applied to the object `kind`/`name`. */
  function broken(kind: string, name: string, change: (object: Json) => void): Manifest[] {
    const copy = structuredClone(manifests);
    const target = copy.find((m) => m.object.kind === kind && (m.object.metadata as { name?: string }).name === name);
    if (!target) throw new Error(`no ${kind} ${name}`);
    change(target.object);
    return copy;
  }
  const workerContainer = (object: Json) => (object as unknown as Deployment).spec.template.spec.containers[0] as unknown as Json;

  it('rejects a typo\u2019d field deep in a pod template, naming its path', async () => {
    const problems = await validateManifests(
      broken('Deployment', 'rlm-worker', (object) => {
        const c = workerContainer(object);
        c.resource = c.resources;
        delete c.resources;
      }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('worker-deployment.yaml#0 (Deployment rlm-worker)');
    expect(problems[0]).toContain('spec.template.spec.containers[0].resource');
    expect(problems[0]).toMatch(/'"?resource"?' does not exist in type/);
  });

  it('rejects an unknown field at the top of a spec', async () => {
    const problems = await validateManifests(
      broken('Service', 'rlm-api', (object) => {
        (object.spec as Json).selecter = { app: 'x' };
      }),
    );
    expect(problems.join('\n')).toMatch(/api-service\.yaml#0 \(Service rlm-api\): spec\.selecter: .*does not exist/);
  });

  it('rejects a value of the wrong type', async () => {
    const problems = await validateManifests(
      broken('Deployment', 'rlm-api', (object) => {
        (object.spec as Json).replicas = 'two';
      }),
    );
    expect(problems.join('\n')).toMatch(/api-deployment\.yaml#0 \(Deployment rlm-api\): .*replicas.*(integer|number)/);
  });

  it('rejects a missing required field', async () => {
    const problems = await validateManifests(
      broken('Service', 'rlm-api', (object) => {
        const ports = (object.spec as { ports: Json[] }).ports;
        delete (ports[0] as Json).port;
      }),
    );
    expect(problems.join('\n')).toMatch(/api-service\.yaml#0 \(Service rlm-api\): .*port/);
  });

  it('rejects a kind it has no schema for instead of skipping it', async () => {
    const problems = await validateManifests(
      broken('Deployment', 'rlm-worker', (object) => {
        object.kind = 'Deploymnet';
      }),
    );
    expect(problems.join('\n')).toContain('no schema for apiVersion apps/v1, kind Deploymnet');
  });
});

describe('the API Deployment as written', () => {
  it('starts `rlm serve` with exactly its arguments and environment (no provider key) and reports ready', async () => {
    const pod = deployment(manifests, 'rlm-api').spec.template.spec;
    const api = container(pod, 'api');
    await using postgres = await startPostgres();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-k8s-api-'));
    try {
      // The pod's files: the ConfigMap's rlm.config.yaml at RLM_CONFIG's path, under `dir`.
      const configPath = path.join(dir, envValue(api, 'RLM_CONFIG') as string);
      await mkdir(path.dirname(configPath), { recursive: true });
      const configMap = find(manifests, 'ConfigMap', 'rlm-config') as { data: Record<string, string> };
      await writeFile(configPath, configMap.data['rlm.config.yaml'] as string);
      // The pod's environment: its literal values, the Secret's database URL replaced by the test's,
      // and the image's RLM_SERVE_HOST (here loopback) with a free port instead of 8080.
      const env: Record<string, string> = { RLM_SERVE_HOST: '127.0.0.1', RLM_SERVE_PORT: '0' };
      for (const e of api.env ?? []) {
        if (e.value !== undefined) env[e.name] = e.name === 'RLM_CONFIG' ? configPath : e.value;
        else if ((e.valueFrom as { secretKeyRef?: { key: string } })?.secretKeyRef?.key === 'DATABASE_URL') env[e.name] = postgres.url;
        else throw new Error(`env ${e.name}: the test does not know where its value comes from`);
      }
      expect(api.envFrom ?? []).toEqual([]);
      const args = (api.args ?? []).map((arg) => arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, name: string) => env[name] ?? ''));
      const child = startRlm(args, { cwd: dir, env: cleanEnv(env) });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const url = await listeningUrl(child, exited, () => stderr);
        for (const probe of [api.readinessProbe, api.livenessProbe]) {
          const response = await fetch(new URL(probe?.httpGet?.path as string, url));
          expect(response.status, probe?.httpGet?.path).toBe(200);
        }
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
