// The deployment files under deploy/, checked offline: no docker, kubectl or gcloud here, so
// every manifest is parsed and cross-checked against the others and against the real CLI
// (`ftrain <sub> --help`). Each check collects every problem as a sentence naming the file and
// the object, so that one run shows all the drift at once.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { COORDINATOR_CERT_NAME } from '../../cli/security-flags.ts';
import { CA_CERT_FILE, CA_KEY_FILE } from '../../common/certificates.ts';
import { JOIN_TOKEN_ENV } from '../../common/join-token.ts';
import { FTRAIN } from '../support/cli.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');
const SPOT = join(DEPLOY, 'spot');

/** The images' ENTRYPOINT: a container without `command` runs `ftrain <args>`. */
const IMAGE_ENTRYPOINT = ['node', '/app/bin/ftrain.js'];
/** Image name -> the Dockerfile under deploy/docker that builds it. */
const IMAGES: Readonly<Record<string, string>> = { 'ftrain:cpu': 'Dockerfile.cpu', 'ftrain:gpu': 'Dockerfile.gpu' };
/** Commands that own a node's preemption hand-over and must be given its deadline. */
const GRACE_FLAG = '--grace-seconds';
const GRACEFUL_SUBCOMMANDS = new Set(['node', 'worker']);
/** Service ports other tooling and the docs rely on: name -> port, per Service. */
const EXPECTED_SERVICE_PORTS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  'ftrain-coordinator': { grpc: 7070, heartbeats: 7071, http: 8080 },
  'ftrain-workers': { pipe: 7100, shards: 7101 },
  'ftrain-etcd': { client: 2379, peer: 2380 },
};
/** etcd's official images (the project's on gcr.io, and its quay.io mirror): the coordinators' store. */
const ETCD_IMAGE = /^(gcr\.io\/etcd-development\/etcd|quay\.io\/coreos\/etcd):v3\.\d+\.\d+$/;
/** What a coordinator with standbys needs of its pod. */
const LEADER_PATH = '/leader';
const HEALTH_PATH = '/healthz';
const SMP_INFO_FILE = 'smp.json';
/** Where the members' TLS directories and the join token come from (deploy/README.md, "Security"). */
const TLS_SECRET = 'ftrain-tls';
const JOIN_TOKEN_SECRET = 'ftrain-join-token';
const JOIN_TOKEN_KEY = 'token';
/** The subcommands that take --tls-dir, and those that also show the join token. */
const TLS_SUBCOMMANDS = new Set(['coordinator', 'worker', 'snapshot-manager', 'node']);
const TOKEN_SUBCOMMANDS = new Set(['coordinator', 'worker', 'node']);

// ---------------------------------------------------------------------------------------------
// The subset of the Kubernetes and Chaos Mesh schemas these checks read.

type Labels = Record<string, string>;
interface Meta {
  name?: string;
  namespace?: string;
  labels?: Labels;
}
interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: Meta;
  spec?: unknown;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath?: string } };
}
interface ExecAction {
  command?: string[];
}
interface Probe {
  tcpSocket?: { port: string | number };
  httpGet?: { port: string | number; path?: string };
  exec?: ExecAction;
}
interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  lifecycle?: { postStart?: { exec?: ExecAction }; preStop?: { exec?: ExecAction } };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  restartPolicy?: string;
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
}
interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
}
interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}
interface Volume {
  name: string;
  emptyDir?: { medium?: string; sizeLimit?: string };
  secret?: { secretName?: string; defaultMode?: number; items?: KeyToPath[] };
  projected?: { defaultMode?: number; sources?: { secret?: { name?: string; items?: KeyToPath[] } }[] };
}
interface WorkloadSpec {
  replicas?: number;
  serviceName?: string;
  podManagementPolicy?: string;
  strategy?: { type?: string };
  volumeClaimTemplates?: { metadata?: Meta }[];
  selector?: { matchLabels?: Labels };
  template?: { metadata?: Meta; spec?: PodSpec };
}
interface ServiceSpec {
  clusterIP?: string;
  publishNotReadyAddresses?: boolean;
  selector?: Labels;
  ports?: { name?: string; port: number; targetPort?: string | number }[];
}
interface PodChaosSpec {
  action?: string;
  mode?: string;
  containerNames?: string[];
  selector?: { labelSelectors?: Labels; namespaces?: string[] };
}

// ---------------------------------------------------------------------------------------------
// Loading.

interface YamlDoc {
  readonly file: string; // relative to the repository root
  readonly index: number;
  readonly value: unknown;
  readonly errors: readonly string[];
}

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && keep(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

function loadYaml(version: '1.1' | '1.2' = '1.2'): YamlDoc[] {
  const docs: YamlDoc[] = [];
  for (const path of filesUnder(DEPLOY, (n) => /\.ya?ml$/.test(n))) {
    const file = relative(ROOT, path);
    let index = 0;
    for (const doc of parseAllDocuments(readFileSync(path, 'utf8'), { version })) {
      const errors = [...doc.errors, ...doc.warnings].map((e) => e.message);
      docs.push({ file, index: index++, value: errors.length ? null : (doc.toJS() as unknown), errors });
    }
  }
  return docs;
}

const docs = loadYaml();
const k8sDocs = docs.filter((d) => d.file.startsWith('deploy/k8s/'));
const objects = k8sDocs.map((d) => ({ where: `${d.file}#${d.index}`, file: d.file, obj: (d.value ?? {}) as K8sObject }));

const where = (o: { where: string; obj: K8sObject }) => `${o.where} (${o.obj.kind ?? '?'} ${o.obj.metadata?.name ?? '?'})`;

interface Workload {
  readonly where: string;
  readonly kind: string;
  readonly name: string;
  readonly spec: WorkloadSpec;
  readonly pod: PodSpec;
  readonly labels: Labels;
}
const workloads: Workload[] = objects
  .filter((o) => o.obj.kind === 'Deployment' || o.obj.kind === 'StatefulSet')
  .map((o) => {
    const spec = (o.obj.spec ?? {}) as WorkloadSpec;
    return { where: where(o), kind: o.obj.kind!, name: o.obj.metadata?.name ?? '?', spec, pod: spec.template?.spec ?? {}, labels: spec.template?.metadata?.labels ?? {} };
  });

interface Service {
  readonly where: string;
  readonly name: string;
  readonly spec: ServiceSpec;
}
const services: Service[] = objects.filter((o) => o.obj.kind === 'Service').map((o) => ({ where: where(o), name: o.obj.metadata?.name ?? '?', spec: (o.obj.spec ?? {}) as ServiceSpec }));

/** The containers that run for the pod's whole life: regular ones and native sidecars. */
function runningContainers(pod: PodSpec): Container[] {
  return [...(pod.containers ?? []), ...(pod.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')];
}

// ---------------------------------------------------------------------------------------------
// ftrain command lines.

/** A parsed `ftrain SUB --flag value --bool ...` command line. */
interface Invocation {
  readonly where: string;
  readonly sub: string;
  /** Flag -> its value, or true for a flag without one. */
  readonly options: ReadonlyMap<string, string | true>;
  /** Problems with the shape of the line itself (stray words, repeated flags). */
  readonly problems: readonly string[];
}

/** Parses argv without the CLI's help: a flag followed by a word that is not a flag takes it as its value. */
function parseInvocation(where: string, argv: readonly string[]): Invocation {
  const [sub = '', ...rest] = argv;
  const options = new Map<string, string | true>();
  const problems: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    if (!token.startsWith('--')) {
      problems.push(`${where}: stray argument '${token}' in \`ftrain ${sub}\``);
      continue;
    }
    const eq = token.indexOf('=');
    const flag = eq < 0 ? token : token.slice(0, eq);
    let value: string | true = true;
    if (eq >= 0) value = token.slice(eq + 1);
    else if (i + 1 < rest.length && !rest[i + 1]!.startsWith('--')) value = rest[++i]!;
    if (options.has(flag)) problems.push(`${where}: ${flag} given twice to \`ftrain ${sub}\``);
    options.set(flag, value);
  }
  return { where, sub, options, problems };
}

interface FtrainContainer {
  readonly where: string;
  readonly workload: Workload;
  readonly container: Container;
  readonly cmd: Invocation;
}

const isEtcd = (c: Container) => ETCD_IMAGE.test(c.image ?? '');
/** The workloads that run etcd (the coordinators' store), and the StatefulSets of ftrain nodes. */
const etcdWorkloads = workloads.filter((w) => runningContainers(w.pod).some(isEtcd));
const nodeStatefulSets = workloads.filter((w) => w.kind === 'StatefulSet' && !etcdWorkloads.includes(w));

/** Every container of every workload but etcd's; their argv is `ftrain <args>` unless `command` says otherwise. */
const ftrainContainers: FtrainContainer[] = workloads.flatMap((w) =>
  runningContainers(w.pod).filter((c) => !isEtcd(c)).map((c) => {
    const at = `${w.where} container ${c.name}`;
    const command = c.command ?? IMAGE_ENTRYPOINT;
    const argv = command.join(' ') === IMAGE_ENTRYPOINT.join(' ') ? (c.args ?? []) : [];
    return { where: at, workload: w, container: c, cmd: parseInvocation(at, argv.map(String)) };
  }),
);
/** etcd's containers, their flags parsed like ftrain's (`--flag=value`). */
const etcdContainers: FtrainContainer[] = etcdWorkloads.flatMap((w) =>
  runningContainers(w.pod).filter(isEtcd).map((c) => {
    const at = `${w.where} container ${c.name}`;
    return { where: at, workload: w, container: c, cmd: parseInvocation(at, ['etcd', ...(c.args ?? []).map(String)]) };
  }),
);
const bySub = (sub: string) => ftrainContainers.filter((c) => c.cmd.sub === sub);

function option(inv: Invocation, flag: string): string | undefined {
  const v = inv.options.get(flag);
  return typeof v === 'string' ? v : undefined;
}

/** The port of `http://HOST:PORT` (the first of a comma-separated list). */
function urlPort(value: string | undefined): number | undefined {
  const m = /^https?:\/\/[^/,]+:(\d{1,5})(?:[/,]|$)/.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}

function hostPort(value: string | undefined): { host: string; port: number } | undefined {
  const m = /^(.+):(\d{1,5})$/.exec(value ?? '');
  return m ? { host: m[1]!, port: Number(m[2]) } : undefined;
}

/** Reads one line of systemd unit syntax (backslash continuations joined) per key of a section. */
function parseUnit(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0 && current) current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim().replace(/\s+/g, ' '));
  }
  return sections;
}

const UNIT_FILE = join(SPOT, 'ftrain-node.service');
const CLOUD_INIT_FILE = join(SPOT, 'cloud-init.yaml');
const unit = parseUnit(existsSync(UNIT_FILE) ? readFileSync(UNIT_FILE, 'utf8') : '');
const unitService = unit.get('Service') ?? new Map<string, string>();
const execStart = (unitService.get('ExecStart') ?? '').split(' ').filter(Boolean);
const ftrainJsAt = execStart.findIndex((t) => t.endsWith('/bin/ftrain.js'));
/** `$VAR` (unbraced) expands to zero or more words: not a flag or value to check. */
const unitArgv = ftrainJsAt < 0 ? [] : execStart.slice(ftrainJsAt + 1).filter((t) => !/^\$[A-Za-z_]\w*$/.test(t));
const unitCmd = parseInvocation('deploy/spot/ftrain-node.service ExecStart', unitArgv);
const cloudInitText = existsSync(CLOUD_INIT_FILE) ? readFileSync(CLOUD_INIT_FILE, 'utf8') : '';

// ---------------------------------------------------------------------------------------------
// The CLI's own description of itself.

interface CliHelp {
  readonly subcommands: ReadonlySet<string>;
  /** Per subcommand: flag -> whether it takes a value. */
  readonly flags: ReadonlyMap<string, ReadonlyMap<string, boolean>>;
}

let cliHelp: CliHelp | undefined;

function help(args: string[]): string {
  return execFileSync(process.execPath, [FTRAIN, ...args, '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

/** Runs `ftrain --help` and `ftrain <sub> --help` once per subcommand the deploy files use. */
function cli(subs: Iterable<string>): CliHelp {
  if (!cliHelp) {
    const top = help([]);
    const commands = top.slice(top.indexOf('Commands:'));
    const subcommands = new Set([...commands.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]!));
    const flags = new Map<string, Map<string, boolean>>();
    for (const sub of new Set(subs)) {
      if (!subcommands.has(sub)) continue;
      const table = new Map<string, boolean>();
      for (const m of help([sub]).matchAll(/^ {2}(?:-\w, )?(--[a-z0-9-]+)( <[^>]+>| \[[^\]]+\])?/gm)) table.set(m[1]!, m[2] !== undefined);
      flags.set(sub, table);
    }
    cliHelp = { subcommands, flags };
  }
  return cliHelp;
}

function flagProblems(inv: Invocation, help: CliHelp): string[] {
  if (!help.subcommands.has(inv.sub)) return [`${inv.where}: \`ftrain ${inv.sub}\` is not a subcommand of \`ftrain --help\``];
  const table = help.flags.get(inv.sub)!;
  const problems = [...inv.problems];
  for (const [flag, value] of inv.options) {
    const takesValue = table.get(flag);
    if (takesValue === undefined) problems.push(`${inv.where}: ${flag} is not in \`ftrain ${inv.sub} --help\``);
    else if (takesValue && value === true) problems.push(`${inv.where}: ${flag} needs a value`);
    else if (!takesValue && value !== true) problems.push(`${inv.where}: ${flag} takes no value, got '${value}'`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Ports.

/** The container port a Service targetPort or probe port names, in the pod's running containers. */
function resolvePort(pod: PodSpec, port: string | number): { container: Container; port: number } | undefined {
  for (const container of runningContainers(pod)) {
    for (const p of container.ports ?? []) {
      if (typeof port === 'number' ? p.containerPort === port : p.name === port) return { container, port: p.containerPort };
    }
  }
  return undefined;
}

function resolveInContainer(container: Container, port: string | number): number | undefined {
  const p = (container.ports ?? []).find((q) => (typeof port === 'number' ? q.containerPort === port : q.name === port));
  return p?.containerPort;
}

const selects = (selector: Labels | undefined, labels: Labels) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The coordinator's Service endpoint: a Service port that leads to the coordinator's --listen port. */
function coordinatorEndpoints(): { service: string; port: number }[] {
  const found: { service: string; port: number }[] = [];
  for (const coord of bySub('coordinator')) {
    const listen = hostPort(option(coord.cmd, '--listen'));
    for (const svc of services) {
      if (!selects(svc.spec.selector, coord.workload.labels)) continue;
      for (const p of svc.spec.ports ?? []) {
        const target = resolveInContainer(coord.container, p.targetPort ?? p.port);
        if (listen && target === listen.port) found.push({ service: svc.name, port: p.port });
      }
    }
  }
  return found;
}

// =============================================================================================

describe('deploy/: every YAML file', () => {
  it('parses, document by document', () => {
    expect(docs.length, 'no YAML under deploy/').toBeGreaterThan(0);
    const problems = docs.flatMap((d) => d.errors.map((e) => `${d.file}#${d.index}: ${e}`));
    expect(problems).toEqual([]);
  });

  it('is, under deploy/k8s, a Kubernetes object with apiVersion, kind and name and no namespace', () => {
    const problems: string[] = [];
    for (const o of objects) {
      if (typeof o.obj.apiVersion !== 'string') problems.push(`${where(o)}: no apiVersion`);
      if (typeof o.obj.kind !== 'string') problems.push(`${where(o)}: no kind`);
      if (typeof o.obj.metadata?.name !== 'string') problems.push(`${where(o)}: no metadata.name`);
      if (o.obj.metadata?.namespace !== undefined) problems.push(`${where(o)}: sets metadata.namespace; users pick it with kubectl -n`);
    }
    expect(problems).toEqual([]);
  });

  it('keeps every container argument and env value a string under YAML 1.1, which Kubernetes parses with', () => {
    const problems: string[] = [];
    for (const d of loadYaml('1.1').filter((x) => x.file.startsWith('deploy/k8s/') && x.value)) {
      const obj = d.value as K8sObject;
      const pod = ((obj.spec ?? {}) as WorkloadSpec).template?.spec;
      for (const c of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
        for (const [field, list] of [['command', c.command], ['args', c.args]] as const) {
          for (const v of list ?? []) if (typeof v !== 'string') problems.push(`${d.file}#${d.index} container ${c.name}: ${field} item ${String(v)} is a ${typeof v}; quote it`);
        }
        for (const e of c.env ?? []) if (e.value !== undefined && typeof e.value !== 'string') problems.push(`${d.file}#${d.index} container ${c.name}: env ${e.name} is a ${typeof e.value}; quote it`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('is described in deploy/README.md', () => {
    const readme = existsSync(join(DEPLOY, 'README.md')) ? readFileSync(join(DEPLOY, 'README.md'), 'utf8') : '';
    const missing = filesUnder(DEPLOY, (n) => n !== 'README.md').map((p) => relative(DEPLOY, p)).filter((f) => !readme.includes(f));
    expect(missing, 'files deploy/README.md does not mention by their path under deploy/').toEqual([]);
  });
});

describe('ftrain command lines (containers and the systemd unit)', () => {
  it('use subcommands and flags that `ftrain <sub> --help` lists (with their values)', () => {
    const invocations = [...ftrainContainers.map((c) => c.cmd), unitCmd];
    const help = cli(invocations.map((i) => i.sub));
    expect(invocations.flatMap((i) => flagProblems(i, help))).toEqual([]);
  });

  it('run the coordinator, and a worker with its snapshot manager in every node pod', () => {
    const problems: string[] = [];
    if (bySub('coordinator').length !== 1) problems.push(`expected one coordinator container, found ${bySub('coordinator').length}`);
    for (const w of nodeStatefulSets) {
      const subs = ftrainContainers.filter((c) => c.workload === w).map((c) => c.cmd.sub).sort();
      if (subs.join(',') !== 'snapshot-manager,worker') problems.push(`${w.where}: runs ${subs.join(', ') || 'nothing'}, expected a worker and a snapshot-manager`);
    }
    for (const c of ftrainContainers) {
      if (c.cmd.sub === '') problems.push(`${c.where}: runs no ftrain subcommand (command ${JSON.stringify(c.container.command)}, expected the image's entry point ${JSON.stringify(IMAGE_ENTRYPOINT)})`);
    }
    expect(problems).toEqual([]);
  });

  it('refer only to $(VARS) the container defines', () => {
    const problems: string[] = [];
    for (const c of ftrainContainers) {
      const defined = new Set((c.container.env ?? []).map((e) => e.name));
      for (const arg of c.container.args ?? []) {
        for (const m of String(arg).matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) if (!defined.has(m[1]!)) problems.push(`${c.where}: $(${m[1]}) is not in its env`);
      }
    }
    expect(problems).toEqual([]);
  });

  it(`give every node its ${GRACE_FLAG}, below the pod's terminationGracePeriodSeconds`, () => {
    const problems: string[] = [];
    for (const c of ftrainContainers.filter((x) => GRACEFUL_SUBCOMMANDS.has(x.cmd.sub))) {
      const grace = Number(option(c.cmd, GRACE_FLAG));
      const period = c.workload.pod.terminationGracePeriodSeconds;
      if (!Number.isInteger(grace) || grace <= 0) problems.push(`${c.where}: no ${GRACE_FLAG} N (the preemption hand-over deadline)`);
      else if (period === undefined || period <= grace) problems.push(`${c.where}: terminationGracePeriodSeconds ${period ?? '(default 30)'} must exceed ${GRACE_FLAG} ${grace}`);
      if (!c.container.lifecycle?.preStop?.exec?.command?.length) problems.push(`${c.where}: no preStop hook starting the hand-over`);
    }
    expect(problems).toEqual([]);
  });
});

/** Ports a command serves: ftrain's --listen port and the dashboard's when it serves every interface; etcd's client and peer ports. */
function servedPorts(cmd: Invocation): number[] {
  if (cmd.sub === 'etcd') return ['--listen-client-urls', '--listen-peer-urls'].map((f) => urlPort(option(cmd, f))).filter((p): p is number => p !== undefined);
  const ports: number[] = [];
  const listen = hostPort(option(cmd, '--listen'));
  if (listen) ports.push(listen.port);
  // The coordinator's heartbeat desk, on the --listen host: nodes beat to it on the host they reached the coordinator at.
  const desk = cmd.sub === 'coordinator' ? option(cmd, '--heartbeat-port') : undefined;
  if (desk !== undefined && Number(desk) > 0) ports.push(Number(desk));
  const dashboard = option(cmd, '--dashboard-port');
  if (dashboard !== undefined && option(cmd, '--dashboard-host') === '0.0.0.0' && !cmd.options.has('--no-dashboard')) ports.push(Number(dashboard));
  return ports;
}

describe('deploy/k8s: ports and addresses', () => {
  it('serve each --listen port as a containerPort of the same container, and probe ports that exist', () => {
    const problems: string[] = [];
    for (const c of ftrainContainers) {
      const listen = option(c.cmd, '--listen');
      const hp = hostPort(listen);
      if (!hp) problems.push(`${c.where}: --listen must be HOST:PORT, got ${listen ?? 'nothing'}`);
      else {
        if (hp.host !== '0.0.0.0') problems.push(`${c.where}: --listen ${listen} is not reachable from other pods; use 0.0.0.0`);
        if (resolveInContainer(c.container, hp.port) === undefined) problems.push(`${c.where}: --listen port ${hp.port} is not one of its containerPorts (${(c.container.ports ?? []).map((p) => p.containerPort).join(', ') || 'none'})`);
      }
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
        const probe = c.container[kind];
        const port = probe?.tcpSocket?.port ?? probe?.httpGet?.port;
        if (port !== undefined && resolveInContainer(c.container, port) === undefined) problems.push(`${c.where}: ${kind} port ${port} is not one of its containerPorts`);
      }
      if (!c.container.readinessProbe) problems.push(`${c.where}: no readinessProbe`);
    }
    expect(problems).toEqual([]);
  });

  it('route every Service port to a --listen port of the pods it selects', () => {
    const problems: string[] = [];
    for (const svc of services) {
      const targets = workloads.filter((w) => selects(svc.spec.selector, w.labels));
      if (targets.length === 0) problems.push(`${svc.where}: its selector ${JSON.stringify(svc.spec.selector)} matches no pod template`);
      for (const w of targets) {
        for (const p of svc.spec.ports ?? []) {
          const target = p.targetPort ?? p.port;
          const resolved = resolvePort(w.pod, target);
          if (!resolved) {
            problems.push(`${svc.where}: port ${p.name ?? p.port} targets ${target}, which no container of ${w.where} exposes`);
            continue;
          }
          const owner = [...ftrainContainers, ...etcdContainers].find((c) => c.workload === w && c.container === resolved.container);
          const served = owner ? servedPorts(owner.cmd) : [];
          if (!served.includes(resolved.port)) problems.push(`${svc.where}: port ${p.name ?? p.port} reaches ${w.where} container ${resolved.container.name} on ${resolved.port}, but it listens on ${served.join(', ') || 'nothing'}`);
        }
      }
    }
    for (const [name, ports] of Object.entries(EXPECTED_SERVICE_PORTS)) {
      const svc = services.find((s) => s.name === name);
      // etcd.yaml is optional: an etcd of your own takes its place (deploy/README.md).
      if (!svc && name === 'ftrain-etcd' && etcdWorkloads.length === 0) continue;
      if (!svc) {
        problems.push(`no Service ${name}`);
        continue;
      }
      for (const [portName, port] of Object.entries(ports)) {
        const p = svc.spec.ports?.find((q) => q.name === portName);
        if (p?.port !== port) problems.push(`${svc.where}: expected port ${portName} = ${port}, found ${p?.port ?? 'none'}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('point every --coordinator at the coordinator Service and its port', () => {
    const endpoints = coordinatorEndpoints();
    expect(endpoints, 'no Service reaches the coordinator container on its --listen port').not.toEqual([]);
    const problems: string[] = [];
    for (const c of ftrainContainers.filter((x) => x.cmd.sub !== 'coordinator')) {
      const value = option(c.cmd, '--coordinator');
      const hp = hostPort(value);
      const ok = hp && endpoints.some((e) => (hp.host === e.service || hp.host.startsWith(`${e.service}.`)) && hp.port === e.port);
      if (!ok) problems.push(`${c.where}: --coordinator ${value ?? '(missing)'} is not ${endpoints.map((e) => `${e.service}:${e.port}`).join(' or ')}`);
    }
    expect(problems).toEqual([]);
  });

  it('name nodes after their pod and advertise its stable DNS name under the headless Service', () => {
    const problems: string[] = [];
    for (const c of ftrainContainers.filter((x) => x.cmd.sub === 'worker' || x.cmd.sub === 'snapshot-manager')) {
      const env = new Map((c.container.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
      if (env.get('POD_NAME') !== 'metadata.name') problems.push(`${c.where}: POD_NAME must come from fieldRef metadata.name`);
      if (env.get('POD_NAMESPACE') !== 'metadata.namespace') problems.push(`${c.where}: POD_NAMESPACE must come from fieldRef metadata.namespace`);
      if (option(c.cmd, '--node-id') !== '$(POD_NAME)') problems.push(`${c.where}: --node-id must be $(POD_NAME), got ${option(c.cmd, '--node-id') ?? 'nothing'}`);
      const advertise = `$(POD_NAME).${c.workload.spec.serviceName ?? '?'}.$(POD_NAMESPACE).svc.cluster.local`;
      if (option(c.cmd, '--advertise') !== advertise) problems.push(`${c.where}: --advertise must be ${advertise}, got ${option(c.cmd, '--advertise') ?? 'nothing'}`);
    }
    expect(problems).toEqual([]);
  });
});

describe('deploy/k8s: pods', () => {
  it('mount only volumes the pod declares', () => {
    const problems: string[] = [];
    for (const w of workloads) {
      const volumes = new Set([...(w.pod.volumes ?? []).map((v) => v.name), ...(w.spec.volumeClaimTemplates ?? []).map((t) => t.metadata?.name)]);
      for (const c of [...(w.pod.containers ?? []), ...(w.pod.initContainers ?? [])]) {
        for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) problems.push(`${w.where} container ${c.name}: mounts ${m.name}, which is not a volume of the pod`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('share one Memory emptyDir between worker (--snapshot-dir) and snapshot manager (--dir), and hook both to it', () => {
    const problems: string[] = [];
    for (const w of nodeStatefulSets) {
      const mounted = (sub: string, flag: string) => {
        const c = ftrainContainers.find((x) => x.workload === w && x.cmd.sub === sub);
        const dir = c && option(c.cmd, flag);
        const mount = c?.container.volumeMounts?.find((m) => m.mountPath === dir);
        if (!c || !dir || !mount) problems.push(`${w.where}: the ${sub} container mounts no volume at its ${flag} ${dir ?? '(missing)'}`);
        return { c, dir, volume: mount?.name };
      };
      const worker = mounted('worker', '--snapshot-dir');
      const smp = mounted('snapshot-manager', '--dir');
      if (!worker.volume || !smp.volume) continue;
      if (worker.volume !== smp.volume || worker.dir !== smp.dir) problems.push(`${w.where}: worker has ${worker.volume} at ${worker.dir}, snapshot manager ${smp.volume} at ${smp.dir}; they must share one`);
      const volume = w.pod.volumes?.find((v) => v.name === worker.volume);
      if (volume?.emptyDir?.medium !== 'Memory') problems.push(`${w.where}: volume ${worker.volume} must be an emptyDir with medium: Memory (tmpfs)`);
      if (!volume?.emptyDir?.sizeLimit) problems.push(`${w.where}: volume ${worker.volume} has no sizeLimit`);
      // The worker must not start before smp.json exists, and the manager must outlast the worker.
      const postStart = (smp.c?.container.lifecycle?.postStart?.exec?.command ?? []).join(' ');
      if (!postStart.includes(`${smp.dir}/${SMP_INFO_FILE}`)) problems.push(`${w.where}: the snapshot-manager postStart hook must wait for ${smp.dir}/${SMP_INFO_FILE}`);
      const containers = w.pod.containers ?? [];
      if (smp.c && worker.c && containers.indexOf(smp.c.container) > containers.indexOf(worker.c.container)) problems.push(`${w.where}: the snapshot-manager container must come before the worker, or its postStart hook does not hold the worker back`);
      const workerPort = worker.c && hostPort(option(worker.c.cmd, '--listen'))?.port;
      const preStop = (smp.c?.container.lifecycle?.preStop?.exec?.command ?? []).join(' ');
      if (!preStop.includes(`/dev/tcp/127.0.0.1/${workerPort}`)) problems.push(`${w.where}: the snapshot-manager preStop hook must wait for the worker's port ${workerPort} to close`);
    }
    expect(problems).toEqual([]);
  });

  it('run the images the Dockerfiles build, with GPUs and --backend tensorflow exactly on ftrain:gpu', () => {
    const problems: string[] = [];
    for (const [image, dockerfile] of Object.entries(IMAGES)) {
      const path = join(DEPLOY, 'docker', dockerfile);
      if (!existsSync(path)) {
        problems.push(`${image}: deploy/docker/${dockerfile} is missing`);
        continue;
      }
      const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(path, 'utf8'));
      if (!entry || JSON.stringify(JSON.parse(entry[1]!)) !== JSON.stringify(IMAGE_ENTRYPOINT)) problems.push(`deploy/docker/${dockerfile}: ENTRYPOINT must be ${JSON.stringify(IMAGE_ENTRYPOINT)}`);
    }
    for (const c of ftrainContainers) {
      const image = c.container.image ?? '';
      if (!(image in IMAGES)) {
        problems.push(`${c.where}: image ${image || '(none)'} is not one of ${Object.keys(IMAGES).join(', ')}`);
        continue;
      }
      const gpu = image === 'ftrain:gpu';
      const gpus = c.container.resources?.limits?.['nvidia.com/gpu'];
      const backend = option(c.cmd, '--backend');
      if (c.cmd.sub === 'worker' && gpu && (gpus === undefined || backend !== 'tensorflow')) problems.push(`${c.where}: a worker on ftrain:gpu needs limits nvidia.com/gpu and --backend tensorflow`);
      if (!gpu && (gpus !== undefined || backend === 'tensorflow')) problems.push(`${c.where}: ftrain:cpu has no tfjs-node-gpu: no GPU limit, no --backend tensorflow`);
      if (!c.container.resources?.requests) problems.push(`${c.where}: no resource requests`);
    }
    const gpuFile = join(DEPLOY, 'docker', 'Dockerfile.gpu');
    const gpuText = existsSync(gpuFile) ? readFileSync(gpuFile, 'utf8') : '';
    if (!gpuText.includes('@tensorflow/tfjs-node-gpu@4.22.0')) problems.push('deploy/docker/Dockerfile.gpu: does not install @tensorflow/tfjs-node-gpu@4.22.0');
    if (!gpuText.includes('nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04')) problems.push('deploy/docker/Dockerfile.gpu: not based on CUDA 11.2 + cuDNN 8 (what libtensorflow 2.9.1 needs)');
    expect(problems).toEqual([]);
  });

  it('pair each StatefulSet with a headless Service, and each selector with its pod labels', () => {
    const problems: string[] = [];
    for (const w of workloads) {
      if (!selects(w.spec.selector?.matchLabels, w.labels)) problems.push(`${w.where}: selector ${JSON.stringify(w.spec.selector?.matchLabels)} does not match its pod labels ${JSON.stringify(w.labels)}`);
      if (w.kind !== 'StatefulSet') continue;
      const svc = services.find((s) => s.name === w.spec.serviceName);
      if (!svc) problems.push(`${w.where}: serviceName ${w.spec.serviceName ?? '(missing)'} is not a Service here`);
      else if (svc.spec.clusterIP !== 'None') problems.push(`${svc.where}: must be headless (clusterIP: None) to give ${w.name}'s pods DNS names`);
      else if (!selects(svc.spec.selector, w.labels)) problems.push(`${svc.where}: does not select the pods of ${w.where}`);
    }
    for (const o of objects.filter((x) => x.obj.kind === 'PodDisruptionBudget')) {
      const sel = ((o.obj.spec ?? {}) as WorkloadSpec).selector?.matchLabels;
      if (!workloads.some((w) => selects(sel, w.labels))) problems.push(`${where(o)}: selector matches no pod template`);
    }
    expect(problems).toEqual([]);
  });

  it("run at least the coordinator's --nodes + --spares pods in every node StatefulSet", () => {
    const coord = bySub('coordinator')[0];
    expect(coord, 'no coordinator container').toBeDefined();
    const needed = Number(option(coord!.cmd, '--nodes') ?? 4) + Number(option(coord!.cmd, '--spares') ?? 0);
    const short = nodeStatefulSets.filter((w) => (w.spec.replicas ?? 1) < needed);
    expect(short.map((w) => `${w.where}: ${w.spec.replicas ?? 1} replicas, the coordinator waits for ${needed}`)).toEqual([]);
  });
});

describe('deploy/k8s: the coordinators and their etcd', () => {
  const envField = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;

  it('run etcd as a StatefulSet whose members find each other by the names its headless Service gives them', () => {
    const problems: string[] = [];
    for (const e of etcdContainers) {
      const w = e.workload;
      const svc = services.find((x) => x.name === w.spec.serviceName);
      const replicas = w.spec.replicas ?? 1;
      if (w.kind !== 'StatefulSet') problems.push(`${w.where}: etcd must be a StatefulSet (stable member names)`);
      if (replicas < 3 || replicas % 2 === 0) problems.push(`${w.where}: ${replicas} etcd members; an odd number of 3 or more survives the loss of one`);
      if (w.spec.podManagementPolicy !== 'Parallel') problems.push(`${w.where}: podManagementPolicy must be Parallel: no member is Ready before a quorum runs`);
      if (svc && svc.spec.publishNotReadyAddresses !== true) problems.push(`${svc.where}: publishNotReadyAddresses must be true: the members resolve each other before any is Ready`);
      if (envField(e.container, 'POD_NAME') !== 'metadata.name') problems.push(`${e.where}: POD_NAME must come from fieldRef metadata.name`);
      if (option(e.cmd, '--name') !== '$(POD_NAME)') problems.push(`${e.where}: --name must be $(POD_NAME), got ${option(e.cmd, '--name') ?? 'nothing'}`);
      const [client, peer] = [urlPort(option(e.cmd, '--listen-client-urls')), urlPort(option(e.cmd, '--listen-peer-urls'))];
      if (client === undefined || resolveInContainer(e.container, client) === undefined) problems.push(`${e.where}: --listen-client-urls port ${client ?? '(none)'} is not a containerPort`);
      if (peer === undefined || resolveInContainer(e.container, peer) === undefined) problems.push(`${e.where}: --listen-peer-urls port ${peer ?? '(none)'} is not a containerPort`);
      const member = (pod: string, port: number | undefined) => `http://${pod}.${w.spec.serviceName ?? '?'}:${port ?? '?'}`;
      const cluster = Array.from({ length: replicas }, (_, i) => `${w.name}-${i}=${member(`${w.name}-${i}`, peer)}`).join(',');
      if (option(e.cmd, '--initial-cluster') !== cluster) problems.push(`${e.where}: --initial-cluster must list the ${replicas} members, ${cluster}; got ${option(e.cmd, '--initial-cluster') ?? 'nothing'}`);
      if (option(e.cmd, '--initial-advertise-peer-urls') !== member('$(POD_NAME)', peer)) problems.push(`${e.where}: --initial-advertise-peer-urls must be ${member('$(POD_NAME)', peer)}`);
      if (option(e.cmd, '--advertise-client-urls') !== member('$(POD_NAME)', client)) problems.push(`${e.where}: --advertise-client-urls must be ${member('$(POD_NAME)', client)}`);
      const dataDir = option(e.cmd, '--data-dir') ?? '';
      if (!(e.container.volumeMounts ?? []).some((m) => dataDir === m.mountPath || dataDir.startsWith(`${m.mountPath}/`))) problems.push(`${e.where}: --data-dir ${dataDir || '(none)'} is not inside a mounted volume`);
      if (!e.container.readinessProbe) problems.push(`${e.where}: no readinessProbe`);
    }
    expect(problems).toEqual([]);
  });

  it('give the coordinators every etcd member as --store, an id from the pod name, the pod IP as --advertise, and /leader as readiness', () => {
    const problems: string[] = [];
    const members = etcdContainers.flatMap((e) => {
      const port = urlPort(option(e.cmd, '--listen-client-urls'));
      return Array.from({ length: e.workload.spec.replicas ?? 1 }, (_, i) => `${e.workload.name}-${i}.${e.workload.spec.serviceName ?? '?'}:${port ?? '?'}`);
    });
    for (const c of bySub('coordinator')) {
      const w = c.workload;
      const store = option(c.cmd, '--store');
      // Without etcd.yaml (an etcd of your own, deploy/README.md), any etcd://HOST:PORT,... will do.
      if (members.length === 0 ? !/^etcd:\/\/[^:/,\s]+:\d+(,[^:/,\s]+:\d+)*$/.test(store ?? '') : store !== `etcd://${members.join(',')}`) {
        problems.push(`${c.where}: --store must name every etcd member, etcd://${members.join(',') || 'HOST:PORT,...'}; got ${store ?? 'nothing'}`);
      }
      if ((w.spec.replicas ?? 1) < 2) problems.push(`${w.where}: ${w.spec.replicas ?? 1} coordinator; a leader and a standby are 2 replicas`);
      if (w.spec.strategy?.type !== 'Recreate') problems.push(`${w.where}: strategy must be Recreate: only the leader is Ready, a rolling update would wait forever for its new standby`);
      if (envField(c.container, 'POD_NAME') !== 'metadata.name') problems.push(`${c.where}: POD_NAME must come from fieldRef metadata.name`);
      if (envField(c.container, 'POD_IP') !== 'status.podIP') problems.push(`${c.where}: POD_IP must come from fieldRef status.podIP`);
      if (option(c.cmd, '--coordinator-id') !== '$(POD_NAME)') problems.push(`${c.where}: --coordinator-id must be $(POD_NAME), got ${option(c.cmd, '--coordinator-id') ?? 'nothing'}`);
      const listen = hostPort(option(c.cmd, '--listen'));
      if (option(c.cmd, '--advertise') !== `$(POD_IP):${listen?.port ?? '?'}`) problems.push(`${c.where}: --advertise must be $(POD_IP):${listen?.port ?? '?'} (the --listen port), got ${option(c.cmd, '--advertise') ?? 'nothing'}`);
      const dashboardPort = Number(option(c.cmd, '--dashboard-port'));
      const probes = { readinessProbe: LEADER_PATH, livenessProbe: HEALTH_PATH } as const;
      for (const [kind, path] of Object.entries(probes) as [keyof typeof probes, string][]) {
        const get = c.container[kind]?.httpGet;
        const port = get && resolveInContainer(c.container, get.port);
        if (get?.path !== path || port !== dashboardPort) problems.push(`${c.where}: ${kind} must be httpGet ${path} on the --dashboard-port ${dashboardPort}, got ${get ? `${get.path ?? '/'} on ${port ?? get.port}` : 'none'}`);
      }
      for (const svc of services.filter((x) => selects(x.spec.selector, w.labels))) {
        if (svc.spec.publishNotReadyAddresses) problems.push(`${svc.where}: must not publishNotReadyAddresses: a standby would get the nodes' traffic`);
      }
    }
    expect(problems).toEqual([]);
  });
});

/** Pod volumes as Kubernetes reads them: YAML 1.1, where a file mode such as 0440 is octal (YAML 1.2 would read 440). */
const podVolumes11 = new Map<string, Volume[]>(
  loadYaml('1.1')
    .filter((d) => d.file.startsWith('deploy/k8s/') && d.value)
    .map((d) => [`${d.file}#${d.index}`, (((d.value as K8sObject).spec ?? {}) as WorkloadSpec).template?.spec?.volumes ?? []]),
);
const volumesOf = (w: Workload): Volume[] => podVolumes11.get(w.where.slice(0, w.where.indexOf(' '))) ?? [];

/** One Secret a volume projects files of: `items` undefined means every key of it. */
interface SecretProjection {
  readonly secret: string;
  readonly items: readonly KeyToPath[] | undefined;
  readonly defaultMode: number | undefined;
}
function secretProjections(v: Volume): SecretProjection[] {
  const out: SecretProjection[] = [];
  if (v.secret) out.push({ secret: v.secret.secretName ?? '?', items: v.secret.items, defaultMode: v.secret.defaultMode });
  for (const src of v.projected?.sources ?? []) if (src.secret) out.push({ secret: src.secret.name ?? '?', items: src.secret.items, defaultMode: v.projected?.defaultMode });
  return out;
}

/** The mount at exactly `dir` in a container, and its volume. */
function mountAt(c: FtrainContainer, dir: string): { mount: { name: string; mountPath: string; readOnly?: boolean }; volume: Volume } | undefined {
  const mount = c.container.volumeMounts?.find((m) => m.mountPath === dir.replace(/\/+$/, ''));
  const volume = mount && volumesOf(c.workload).find((v) => v.name === mount.name);
  return mount && volume ? { mount, volume } : undefined;
}

/** The certificates a container's --tls-dir must hold: the coordinator's own, or one per pod of its StatefulSet (node id = pod name). */
function expectedMembers(c: FtrainContainer): string[] {
  if (c.cmd.sub === 'coordinator') return [option(c.cmd, '--tls-name') ?? COORDINATOR_CERT_NAME];
  return Array.from({ length: c.workload.spec.replicas ?? 1 }, (_, i) => `${c.workload.name}-${i}`);
}

/** The single Secret projection of the volume at `dir`, checked to be read-only; problems go to `problems`. */
function secretAt(c: FtrainContainer, flag: string, dir: string, secret: string, problems: string[]): SecretProjection | undefined {
  const at = mountAt(c, dir);
  if (!at) {
    problems.push(`${c.where}: ${flag} is in ${dir}, which is not a mountPath of the container`);
    return undefined;
  }
  if (at.mount.readOnly !== true) problems.push(`${c.where}: the mount of ${at.mount.name} at ${dir} must be readOnly`);
  const projections = secretProjections(at.volume);
  if (projections.length !== 1 || projections[0]!.secret !== secret) {
    problems.push(`${c.where}: volume ${at.volume.name} at ${dir} must be the Secret ${secret} alone, got ${projections.map((p) => p.secret).join(', ') || 'no Secret'}`);
    return undefined;
  }
  return projections[0];
}

describe('deploy/k8s: certificates and the join token from Secrets', () => {
  it(`give every member --tls-dir on a read-only mount of the Secret ${TLS_SECRET} holding ca.crt and exactly the pairs of its pods`, () => {
    const problems: string[] = [];
    const members = ftrainContainers.filter((c) => TLS_SUBCOMMANDS.has(c.cmd.sub));
    expect(members.length, 'no coordinator, worker or snapshot-manager container').toBeGreaterThan(0);
    for (const c of members) {
      if (c.cmd.options.has('--insecure')) problems.push(`${c.where}: --insecure turns TLS and the join token off`);
      const dir = option(c.cmd, '--tls-dir');
      if (!dir) {
        problems.push(`${c.where}: no --tls-dir: its connections would be plaintext`);
        continue;
      }
      // A node's certificate is the one of its --node-id: the pod's name.
      if (c.cmd.sub !== 'coordinator' && option(c.cmd, '--node-id') !== '$(POD_NAME)') problems.push(`${c.where}: --node-id must be $(POD_NAME), the name of the pod's certificate`);
      const projection = secretAt(c, '--tls-dir', dir, TLS_SECRET, problems);
      if (!projection) continue;
      if (!projection.items) {
        problems.push(`${c.where}: mounts all of ${TLS_SECRET}; list items (ca.crt and its pods' pairs) so that no other key of it is mounted`);
        continue;
      }
      for (const item of projection.items) if (item.key !== item.path) problems.push(`${c.where}: item ${item.key} of ${TLS_SECRET} lands as ${item.path}; ftrain looks for it under its own name`);
      const want = [CA_CERT_FILE, ...expectedMembers(c).flatMap((n) => [`${n}.crt`, `${n}.key`])].sort();
      const got = projection.items.map((i) => i.path);
      const missing = want.filter((f) => !got.includes(f));
      const extra = got.filter((f) => !want.includes(f));
      if (missing.length) problems.push(`${c.where}: --tls-dir ${dir} lacks ${missing.join(', ')} (items of ${TLS_SECRET}: ca.crt and one pair per pod)`);
      if (extra.length) problems.push(`${c.where}: --tls-dir ${dir} also gets ${extra.join(', ')}, which are not its own`);
    }
    expect(problems).toEqual([]);
  });

  it(`take the join token from the Secret ${JOIN_TOKEN_SECRET} with --join-token-file, never on the command line`, () => {
    const problems: string[] = [];
    for (const c of ftrainContainers.filter((x) => TOKEN_SUBCOMMANDS.has(x.cmd.sub))) {
      if (c.cmd.options.has('--join-token')) problems.push(`${c.where}: --join-token shows the token in the process list; use --join-token-file`);
      if ((c.container.env ?? []).some((e) => e.name === JOIN_TOKEN_ENV && e.value !== undefined)) problems.push(`${c.where}: ${JOIN_TOKEN_ENV} is written in the manifest; take it from the Secret`);
      const file = option(c.cmd, '--join-token-file');
      if (!file) {
        problems.push(`${c.where}: no --join-token-file (the coordinator ${c.cmd.sub === 'coordinator' ? 'with --store etcd refuses to start' : 'refuses a node'} without the token)`);
        continue;
      }
      const projection = secretAt(c, '--join-token-file', dirname(file), JOIN_TOKEN_SECRET, problems);
      if (projection && !(projection.items ?? []).some((i) => i.key === JOIN_TOKEN_KEY && i.path === basename(file))) {
        problems.push(`${c.where}: --join-token-file ${file} is not the key ${JOIN_TOKEN_KEY} of ${JOIN_TOKEN_SECRET} (items: {key: ${JOIN_TOKEN_KEY}, path: ${basename(file)}})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('never mount ca.key, nor a key readable by anyone but the pod user', () => {
    const problems: string[] = [];
    for (const w of workloads) {
      for (const v of volumesOf(w)) {
        for (const p of secretProjections(v)) {
          for (const item of p.items ?? []) if (basename(item.key) === CA_KEY_FILE || basename(item.path) === CA_KEY_FILE) problems.push(`${w.where}: volume ${v.name} mounts ${CA_KEY_FILE}, which never leaves the machine that issues`);
          if (p.secret === TLS_SECRET && !p.items) problems.push(`${w.where}: volume ${v.name} mounts all of ${TLS_SECRET}; list its items`);
          if (p.secret !== TLS_SECRET && p.secret !== JOIN_TOKEN_SECRET) continue;
          // Secret files belong to root: with fsGroup the kubelet gives them the pod's group and its read bit.
          for (const mode of [p.defaultMode, ...(p.items ?? []).map((i) => i.mode)]) {
            if (mode !== undefined && (mode & ~0o440) !== 0) problems.push(`${w.where}: volume ${v.name} has mode 0${mode.toString(8)}; at most 0440 (read by owner and group)`);
          }
          if (p.defaultMode === undefined) problems.push(`${w.where}: volume ${v.name} has no defaultMode: Kubernetes makes it 0644, readable by every user of the pod`);
          const ctx = w.pod.securityContext;
          if (ctx?.runAsUser !== 0 && ctx?.fsGroup === undefined) problems.push(`${w.where}: no securityContext.fsGroup: uid ${ctx?.runAsUser ?? '?'} cannot read the root-owned files of ${p.secret}`);
        }
      }
    }
    for (const path of filesUnder(DEPLOY, () => true)) {
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (/--from-file=(\S*[/=])?ca\.key\b/.test(line)) problems.push(`${relative(ROOT, path)}: ${line.trim()}: ${CA_KEY_FILE} must not go into a Secret`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('say how to issue every pod its certificate and make both Secrets', () => {
    const problems: string[] = [];
    const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8');
    for (const secret of [TLS_SECRET, JOIN_TOKEN_SECRET]) if (!readme.includes(`kubectl create secret generic ${secret}`)) problems.push(`deploy/README.md: no \`kubectl create secret generic ${secret}\``);
    for (const w of nodeStatefulSets) {
      const file = w.where.slice(0, w.where.indexOf('#'));
      const text = readFileSync(join(ROOT, file), 'utf8');
      const issue = `for i in $(seq 0 ${(w.spec.replicas ?? 1) - 1}); do ftrain certs issue --dir tls --name ${w.name}-$i; done`;
      if (!text.includes(issue)) problems.push(`${file}: its comments do not give the command for its ${w.spec.replicas ?? 1} pods: ${issue}`);
    }
    expect(problems).toEqual([]);
  });
});

describe('deploy/k8s/chaos: Chaos Mesh experiments', () => {
  it('target pods and containers that exist', () => {
    const problems: string[] = [];
    const chaos = objects.filter((o) => o.file.startsWith('deploy/k8s/chaos/'));
    expect(chaos.length, 'no Chaos Mesh objects').toBeGreaterThan(0);
    for (const o of chaos) {
      if (o.obj.apiVersion !== 'chaos-mesh.org/v1alpha1') problems.push(`${where(o)}: apiVersion must be chaos-mesh.org/v1alpha1`);
      const spec = (o.obj.spec ?? {}) as PodChaosSpec & { type?: string; schedule?: string; podChaos?: PodChaosSpec };
      let pc: PodChaosSpec | undefined;
      if (o.obj.kind === 'PodChaos') pc = spec;
      else if (o.obj.kind === 'Schedule') {
        if (spec.type !== 'PodChaos' || !spec.podChaos) problems.push(`${where(o)}: expected type PodChaos with a podChaos spec`);
        if (!spec.schedule) problems.push(`${where(o)}: no schedule`);
        pc = spec.podChaos;
      } else problems.push(`${where(o)}: kind must be PodChaos or Schedule`);
      if (!pc) continue;
      if (!['pod-kill', 'pod-failure', 'container-kill'].includes(pc.action ?? '')) problems.push(`${where(o)}: unknown action ${pc.action}`);
      if (pc.selector?.namespaces) problems.push(`${where(o)}: names namespaces; leave them out so the experiment targets its own namespace`);
      const targets = workloads.filter((w) => selects(pc.selector?.labelSelectors, w.labels));
      if (targets.length === 0) problems.push(`${where(o)}: labelSelectors ${JSON.stringify(pc.selector?.labelSelectors)} match no pod template`);
      if (pc.action === 'container-kill') {
        if (!pc.containerNames?.length) problems.push(`${where(o)}: container-kill without containerNames`);
        for (const w of targets) {
          // Released Chaos Mesh finds containers in spec.containers only, not in initContainers.
          for (const name of pc.containerNames ?? []) if (!(w.pod.containers ?? []).some((c) => c.name === name)) problems.push(`${where(o)}: ${w.where} has no container ${name}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('deploy/spot: ftrain nodes on spot VMs', () => {
  it('run `ftrain node` from systemd with a stop timeout above the grace period', () => {
    const problems: string[] = [];
    if (unitCmd.sub !== 'node') problems.push(`ExecStart runs \`ftrain ${unitCmd.sub}\`, expected \`ftrain node\` (${unitService.get('ExecStart') ?? 'no ExecStart'})`);
    const grace = Number(option(unitCmd, GRACE_FLAG));
    const timeout = Number(unitService.get('TimeoutStopSec'));
    if (!Number.isInteger(grace) || grace <= 0) problems.push(`ExecStart: no ${GRACE_FLAG} N`);
    else if (!(timeout > grace)) problems.push(`TimeoutStopSec ${unitService.get('TimeoutStopSec') ?? '(unset)'} must exceed ${GRACE_FLAG} ${grace}`);
    if (unitService.get('KillSignal') !== 'SIGTERM') problems.push('KillSignal must be SIGTERM (what the node agent hands over on)');
    if (unitService.get('KillMode') !== 'mixed') problems.push('KillMode must be mixed: SIGTERM to the node agent only, which stops its worker and snapshot manager in order');
    if (unitService.get('Restart') !== 'on-failure') problems.push('Restart must be on-failure');
    if (unitService.get('EnvironmentFile') !== '/etc/ftrain/node.env') problems.push('EnvironmentFile must be /etc/ftrain/node.env');
    if (!hostPort(option(unitCmd, '--listen'))) problems.push('ExecStart: --listen must be HOST:PORT');
    expect(problems).toEqual([]);
  });

  it('run the node with mutual TLS and the join token from files cloud-init fetched before it started the unit', () => {
    const problems: string[] = [];
    const tlsDir = option(unitCmd, '--tls-dir');
    const tokenFile = option(unitCmd, '--join-token-file');
    if (!tlsDir) problems.push('ExecStart: no --tls-dir');
    if (!tokenFile) problems.push('ExecStart: no --join-token-file');
    for (const flag of ['--join-token', '--insecure']) if (unitCmd.options.has(flag)) problems.push(`ExecStart: ${flag}`);
    // The certificate is the one of --node-id: the instance's name, read from the metadata server.
    const nodeId = /^\$\{(\w+)\}$/.exec(option(unitCmd, '--node-id') ?? '')?.[1];
    if (!nodeId || !cloudInitText.includes(`${nodeId}=$node_id`) || !cloudInitText.includes('node_id=$(get name)')) problems.push(`ExecStart: --node-id must be a node.env variable cloud-init sets to the instance's name (node_id=$(get name)), got ${option(unitCmd, '--node-id') ?? 'nothing'}`);
    const start = cloudInitText.indexOf('systemctl enable --now ftrain-node.service');
    const user = unitService.get('User') ?? '?';
    const needles = [
      `tls=${tlsDir ?? '?'}`,
      `token=${tokenFile ?? '?'}`,
      'gcloud secrets versions access latest --secret=',
      `chown -R ${user}:${unitService.get('Group') ?? user} "$tls" "$token"`,
      'chmod 0700 "$tls"',
      'chmod 0600 "$tls"/* "$token"',
    ];
    for (const needle of needles) {
      const at = cloudInitText.indexOf(needle);
      if (at < 0) problems.push(`cloud-init does not run or set ${needle}`);
      else if (start >= 0 && at > start) problems.push(`cloud-init starts the unit before ${needle}`);
    }
    expect(problems).toEqual([]);
  });

  it('install from cloud-init what the unit runs: node, the app, node.env with every variable, the unit itself', () => {
    const problems: string[] = [];
    if (!cloudInitText.startsWith('#cloud-config\n')) problems.push('deploy/spot/cloud-init.yaml must start with #cloud-config');
    const [nodeBin = '', ftrainJs = ''] = ftrainJsAt < 1 ? [] : [execStart[ftrainJsAt - 1], execStart[ftrainJsAt]];
    if (!cloudInitText.includes(nodeBin)) problems.push(`cloud-init does not install ${nodeBin || 'the node binary ExecStart runs'}`);
    const appDir = ftrainJs.replace(/\/bin\/ftrain\.js$/, '');
    if (!appDir || !cloudInitText.includes(`-C ${appDir} `)) problems.push(`cloud-init does not unpack the app into ${appDir || '(ExecStart runs no bin/ftrain.js)'}`);
    for (const m of (unitService.get('ExecStart') ?? '').matchAll(/\$\{?([A-Za-z_]\w*)\}?/g)) {
      if (!cloudInitText.includes(`${m[1]}=`)) problems.push(`ExecStart uses $${m[1]}, which cloud-init does not write to node.env`);
    }
    for (const needle of ['/etc/ftrain/node.env', 'deploy/spot/ftrain-node.service', 'systemctl enable --now ftrain-node.service']) {
      if (!cloudInitText.includes(needle)) problems.push(`cloud-init does not mention ${needle}`);
    }
    expect(problems).toEqual([]);
  });

  describe('launch-gcp.sh', () => {
    const script = join(SPOT, 'launch-gcp.sh');
    // A gcloud that only complains: whatever the script does, the test creates no VM.
    let fakeBin = '';
    beforeAll(() => {
      fakeBin = mkdtempSync(join(tmpdir(), 'ftrain-fake-gcloud-'));
      writeFileSync(join(fakeBin, 'gcloud'), '#!/bin/sh\necho "fake gcloud called: $*" >&2\nexit 97\n');
      chmodSync(join(fakeBin, 'gcloud'), 0o755);
    });
    afterAll(() => rmSync(fakeBin, { recursive: true, force: true }));
    const run = (args: string[]) => spawnSync('bash', [script, ...args], { encoding: 'utf8', env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH ?? ''}` }, timeout: 30_000 });

    it('passes bash -n and answers --help', () => {
      const syntax = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
      expect(syntax.status, syntax.stderr).toBe(0);
      const usage = run(['--help']);
      expect(usage.status, usage.stderr).toBe(0);
      expect(usage.stdout).toContain('--dry-run');
    });

    it('prints one spot instance-create per VM with --dry-run, with the cloud-init user data', () => {
      const r = run(['--dry-run', '--count', '2', '--coordinator', '10.0.0.2:7070']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('fake gcloud called');
      const creates = r.stdout.split('\n').filter((l) => l.startsWith('gcloud compute instances create '));
      expect(creates, r.stdout).toHaveLength(2);
      const names = new Set<string>();
      for (const line of creates) {
        const words = line.split(' ').map((w) => w.replace(/\\(.)/g, '$1'));
        names.add(words[4] ?? '');
        expect(words).toContain('--provisioning-model=SPOT');
        expect(words).toContain('--instance-termination-action=DELETE');
        const userData = words.find((w) => w.startsWith('--metadata-from-file=user-data='))?.slice('--metadata-from-file=user-data='.length);
        expect(userData && resolve(userData)).toBe(CLOUD_INIT_FILE);
        expect(words.find((w) => w.startsWith('--metadata='))).toContain('ftrain-coordinator=10.0.0.2:7070');
      }
      expect(names.size, 'VM names must differ').toBe(2);
    });

    it('sets every metadata attribute cloud-init reads', () => {
      const text = readFileSync(script, 'utf8');
      const read = [...cloudInitText.matchAll(/attributes\/(ftrain-[a-z-]+)/g)].map((m) => m[1]!);
      expect(read.length).toBeGreaterThan(0);
      expect(read.filter((key) => !text.includes(`${key}=`))).toEqual([]);
    });

    /** A CA directory and a token file as the operator has them (the dry run only checks they exist). */
    const operatorFiles = () => {
      const dir = mkdtempSync(join(tmpdir(), 'ftrain-launch-'));
      for (const f of [CA_CERT_FILE, CA_KEY_FILE]) writeFileSync(join(dir, f), 'not read by a dry run\n');
      writeFileSync(join(dir, 'token'), `${'t'.repeat(32)}\n`);
      return { dir, tls: dir, token: join(dir, 'token') };
    };
    const unescape = (line: string) => line.split(' ').map((w) => w.replace(/\\(.)/g, '$1'));
    const SA = 'ftrain-node@p.iam.gserviceaccount.com';

    it("stores each VM's certificate in a secret of its own that only the VMs' account reads, with --dry-run", () => {
      const f = operatorFiles();
      try {
        const r = run(['--dry-run', '--count', '2', '--coordinator', '10.0.0.2:7070', '--source', 'gs://b/ftrain.tar.gz', '--tls-dir', f.tls, '--join-token-file', f.token, '--service-account', SA]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).not.toContain('fake gcloud called');
        expect(readdirSync(f.dir).sort(), 'a dry run issues nothing').toEqual([CA_CERT_FILE, CA_KEY_FILE, 'token'].sort());
        const lines = r.stdout.split('\n');
        expect(lines.filter((l) => l.includes(CA_KEY_FILE)), `${CA_KEY_FILE} never leaves this machine`).toEqual([]);
        const grants = lines.filter((l) => l.startsWith('gcloud secrets add-iam-policy-binding ')).map(unescape);
        const granted = (secret: string) => grants.some((w) => w[3] === secret && w.includes(`--member=serviceAccount:${SA}`) && w.includes('--role=roles/secretmanager.secretAccessor'));
        expect(granted('ftrain-join-token'), r.stdout).toBe(true);
        const creates = lines.filter((l) => l.startsWith('gcloud compute instances create ')).map(unescape);
        expect(creates).toHaveLength(2);
        for (const words of creates) {
          const name = words[4] ?? '';
          const secret = `${name}-tls`;
          expect(lines.some((l) => l.endsWith(`certs issue --dir ${f.tls} --name ${name}`)), `issues ${name}.crt`).toBe(true);
          expect(lines.some((l) => l.startsWith(`tar -C ${f.tls} -czf - ca.crt ${name}.crt ${name}.key | base64 | gcloud secrets create ${secret} `)), `stores ${secret}`).toBe(true);
          expect(granted(secret), `grants ${secret}`).toBe(true);
          expect(words).toContain(`--service-account=${SA}`);
          expect(words).toContain('--scopes=cloud-platform');
          const metadata = words.find((w) => w.startsWith('--metadata='))?.split(',') ?? [];
          expect(metadata).toEqual(expect.arrayContaining(['ftrain-secrets=secret-manager', `ftrain-tls-secret=${secret}`, 'ftrain-join-token-secret=ftrain-join-token']));
        }
      } finally {
        rmSync(f.dir, { recursive: true, force: true });
      }
    });

    it('copies them over SSH instead with --deliver ssh, and cloud-init then waits for the files', () => {
      const f = operatorFiles();
      try {
        const r = run(['--dry-run', '--count', '1', '--coordinator', '10.0.0.2:7070', '--source', 'gs://b/ftrain.tar.gz', '--tls-dir', f.tls, '--join-token-file', f.token, '--deliver', 'ssh']);
        expect(r.status, r.stderr).toBe(0);
        const lines = r.stdout.split('\n');
        expect(lines.filter((l) => l.includes('gcloud secrets'))).toEqual([]);
        expect(lines.filter((l) => l.includes(CA_KEY_FILE))).toEqual([]);
        const create = unescape(lines.find((l) => l.startsWith('gcloud compute instances create ')) ?? '');
        expect(create.find((w) => w.startsWith('--metadata='))?.split(',')).toContain('ftrain-secrets=files');
        const name = create[4] ?? '?';
        expect(lines.filter((l) => l.includes(`gcloud compute ssh ${name} `))).toHaveLength(2);
        expect(cloudInitText).toContain('files)');
      } finally {
        rmSync(f.dir, { recursive: true, force: true });
      }
    });

    it('refuses to launch without the CA, the token or the service account, before issuing or calling gcloud', () => {
      const f = operatorFiles();
      try {
        const base = ['--count', '1', '--coordinator', '10.0.0.2:7070', '--source', 'gs://b/ftrain.tar.gz'];
        const short = join(f.dir, 'short');
        writeFileSync(short, 'too-short\n');
        const cases: [string[], string][] = [
          [['--join-token-file', f.token, '--service-account', SA], '--tls-dir'],
          [['--tls-dir', f.tls, '--service-account', SA], '--join-token-file'],
          [['--tls-dir', f.tls, '--join-token-file', f.token], '--service-account'],
          [['--tls-dir', f.tls, '--join-token-file', short, '--service-account', SA], '16 characters'],
          [['--tls-dir', join(f.dir, 'nowhere'), '--join-token-file', f.token, '--service-account', SA], 'ca.key'],
        ];
        for (const [args, says] of cases) {
          const r = run([...base, ...args]);
          expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
          expect(r.stderr).toContain(says);
          expect(r.stderr).not.toContain('fake gcloud called');
        }
        expect(readdirSync(f.dir).sort()).toEqual([CA_CERT_FILE, CA_KEY_FILE, 'short', 'token'].sort());
      } finally {
        rmSync(f.dir, { recursive: true, force: true });
      }
    });

    it('refuses to launch without --source, before calling gcloud', () => {
      const r = run(['--count', '1', '--coordinator', '10.0.0.2:7070']);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('--source');
      expect(r.stderr).not.toContain('fake gcloud called');
    });
  });
});
