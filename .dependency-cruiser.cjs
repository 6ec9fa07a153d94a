// @ts-check
/**
 * Layer check for ftrain: `npm run check:layers` (part of `npm test`).
 *
 * The allowed import directions are written ONCE, in LAYERS below; every `forbidden` rule is
 * generated from that table. To change who may import whom, edit the table, nothing else.
 *
 *   may  folders (at the repo root) whose files this layer may import; a layer lists itself.
 *        Anything else in the project is forbidden: another folder, bin/, test/, dashboard/ ...
 *   npm  'any'   any npm package and node: builtin;
 *        'none'  node: builtins only;
 *        [...]   any npm package except these (glob-like: '@grpc/*', 'pino*').
 *
 * A sub-folder with its own entry (coordinator/core, worker/core) is checked by that entry only,
 * not by its parent's. Folders without an entry (test/, scripts/, bin/, root config files) are
 * cruised but unrestricted: only the cycle and unresolvable-import rules apply to them.
 * Nobody but cli/ lists cli/, so nobody else may import it.
 */

const ROLES = ['coordinator', 'worker', 'snapshot-manager'];
const TOOLS = ['chaos', 'bench', 'experiment'];
const BASE = ['common', 'domain', 'proto'];
/** npm packages that bind code to a process, the network or a tensor backend. */
const ADAPTER_PACKAGES = ['@grpc/*', '@tensorflow/*', 'pino*', 'prom-client'];

/** @type {Record<string, {may: string[], npm: 'any' | 'none' | string[]}>} */
const LAYERS = {
  // ftrain.proto and the TypeScript types generated from it (proto/generated).
  'proto':            { may: ['proto'],                                             npm: 'any' },
  // Pure code more than one role shares: job options, routes, CheckFree maths, shard placement, erasure code choice, snapshot slots, injection spec, errors, prng.
  'domain':           { may: ['domain'],                                            npm: ADAPTER_PACKAGES },
  // Adapters two roles share: gRPC plumbing and wire codecs, logging, corpus loading, thread bootstrap.
  'common':           { may: ['common', 'domain', 'proto'],                         npm: 'any' },
  // The coordinator role: server, node lifecycle, the glue around its core.
  'coordinator':      { may: ['coordinator', ...BASE],                              npm: 'any' },
  // The coordinator's pure brain: decisions from state, no I/O, no wire types.
  'coordinator/core': { may: ['coordinator/core', 'domain'],                        npm: 'none' },
  // The worker role: stage training, pipe mailbox, checkpoints, its gRPC server.
  'worker':           { may: ['worker', ...BASE],                                   npm: 'any' },
  // The worker's pure core: no I/O, no wire types.
  'worker/core':      { may: ['worker/core', 'domain'],                             npm: 'none' },
  // The snapshot manager role: erasure-coded snapshot storage and protection.
  'snapshot-manager': { may: ['snapshot-manager', ...BASE],                         npm: 'any' },
  // Run report, metrics, dashboard server and data, built from the coordinator's actions/status.
  'observability':    { may: ['observability', 'coordinator', ...BASE],             npm: 'any' },
  // The composition root: wires roles, observability and tools into the `ftrain` command.
  'cli':              { may: ['cli', ...ROLES, 'observability', ...TOOLS, ...BASE], npm: 'any' },
  // Tool: chaos runs against a local or remote fleet.
  'chaos':            { may: [...TOOLS, ...ROLES, 'observability', ...BASE],        npm: 'any' },
  // Tool: micro- and macro-benchmarks.
  'bench':            { may: [...TOOLS, ...ROLES, 'observability', ...BASE],        npm: 'any' },
  // Tool: experiments (churn, failure model, loss plots); uses bench/.
  'experiment':       { may: [...TOOLS, ...ROLES, 'observability', ...BASE],        npm: 'any' },
};

/** Import cycles fail the check like a forbidden import. */
const CYCLE_SEVERITY = 'error';

// ---------------------------------------------------------------------------------------------

/** Every way dependency-cruiser classifies an import of an npm package. */
/** @type {import('dependency-cruiser').DependencyType[]} */
const NPM_TYPES = ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'];

/** @param {string} s */
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** '@grpc/*' -> a regex matching the package's files under node_modules. @param {string} name */
const packageRegex = (name) => `(^|/)node_modules/${escape(name).replace(/\\\*/g, '[^/]*')}/`;
/** @param {string[]} folders */
const inFolders = (folders) => `^(${folders.map(escape).join('|')})/`;
/** @param {string} layer */
const ruleName = (layer) => `layer-${layer.replace(/\//g, '-')}`;

/** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
const layerRules = Object.entries(LAYERS).flatMap(([layer, { may, npm }]) => {
  const subLayers = Object.keys(LAYERS).filter((other) => other.startsWith(`${layer}/`));
  const from = subLayers.length ? { path: inFolders([layer]), pathNot: inFolders(subLayers) } : { path: inFolders([layer]) };
  /** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
  const rules = [
    {
      name: ruleName(layer),
      comment: `${layer}/ may import only ${may.map((f) => `${f}/`).join(', ')} (see LAYERS in .dependency-cruiser.cjs)`,
      severity: 'error',
      from,
      to: { pathNot: inFolders(may), dependencyTypesNot: ['core', ...NPM_TYPES], couldNotResolve: false },
    },
  ];
  if (npm === 'none') {
    rules.push({
      name: `${ruleName(layer)}-npm`,
      comment: `${layer}/ may import no npm package (node: builtins only)`,
      severity: 'error',
      from,
      to: { dependencyTypes: NPM_TYPES },
    });
  } else if (Array.isArray(npm)) {
    rules.push({
      name: `${ruleName(layer)}-npm`,
      comment: `${layer}/ may not import ${npm.join(', ')}`,
      severity: 'error',
      from,
      to: { path: npm.map(packageRegex) },
    });
  }
  return rules;
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      comment: 'This import is part of a cycle between project modules.',
      severity: CYCLE_SEVERITY,
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'This project-relative import does not resolve to a file.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, path: '^[.]{1,2}/' },
    },
  ],
  options: {
    // Listed but not followed: the npm rules see which package a file imports.
    doNotFollow: { path: '(^|/)node_modules/' },
    // Browser JS, docs, deployment files, the compiled build, dot-folders (.git, .ftrain, .ci) and root dot-files.
    exclude: { path: '^(build|dashboard|docs|deploy|tmp)/|^[.][^./]' },
    // Type-only imports count too: a layer may not even name another layer's types.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Explicit '.ts' extensions (allowImportingTsExtensions); proto/generated imports without one.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'types', 'default'],
      extensions: ['.ts', '.d.ts', '.js', '.mjs', '.cjs', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
