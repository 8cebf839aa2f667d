#!/usr/bin/env node
// Builds the single-file agent binary dist/skiff-agent-linux-x64 with Node.js's single executable
// application (SEA) support, so a VM runs `skiff agent` without a Node.js install:
//
//   1. esbuild bundles scripts/agent-binary-main.ts (the `agent` and `version` commands) and
//      everything it imports into one minified CommonJS file that may only require Node's built-in
//      modules. `import.meta.url` does not exist in CommonJS: it is replaced by the file URL of the
//      running file (the executable itself inside a SEA). zod's translated error messages (every
//      locale but English, which zod sets by default) are left out: the agent never selects one.
//   2. The protobuf definitions, which the npm package reads from .proto files in node_modules,
//      are written as JSON descriptors and embedded as SEA assets, one per proto set of
//      AGENT_PROTO_FILES in src/xds/protos/loader.ts (`skiff-protos-runtime.json`, kept loaded;
//      `skiff-protos-bootstrap.json`, loaded only to write Envoy's bootstrap). Only the agent's own
//      message types go in, not all of Envoy's API the control plane loads: it saves memory.
//   3. The bundle is embedded, Brotli-compressed, as the asset `skiff-agent.js`; the SEA's main
//      script is a small loader (LOADER below) that reads it as a one-byte string and runs it as
//      CommonJS. Memory (issue 9): Node.js 20 turns a SEA's main script into a UTF-16 string, two
//      bytes per character kept for the process's lifetime (V8 keeps a script's source for lazy
//      compilation); the bundle is ASCII (checked), so one byte per character is enough. Stack
//      traces from the binary name `skiff-agent.js` with minified positions. The V8 code cache
//      (`useCodeCache`) is not used: V8 rejects a cache made with other V8 flags than the run's,
//      and the systemd unit's NODE_OPTIONS (--jitless) differ from the build's.
//   4. `node --experimental-sea-config` turns loader + assets into a preparation blob, which
//      postject injects into a copy of this Node.js binary (the NODE_SEA_BLOB resource, with the
//      SEA fuse flipped).
//
// Usage: node scripts/build-agent-binary.mjs [--out dist/skiff-agent-linux-x64] [--version 0.1.0]
// (--version stamps another version into the binary; the rollout test upgrades with it).
// The agent must not pull in the control plane's native module (better-sqlite3): the build fails
// if any bundled file comes from it.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POSTJECT = 'postject@1.0.0-alpha.6';
// The sentinel Node.js builds into its binary to tell whether a SEA blob was injected (Node.js
// docs, "Single executable applications": `--sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2`).
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/**
 * Message types the agent looks up in each proto set (agents/sds.ts, ca-client.ts, bootstrap.ts,
 * src/xds/protos/registration.ts); the build fails if a set lacks one, rather than the binary.
 */
const REQUIRED_TYPES = {
  runtime: [
    'envoy.service.discovery.v3.DiscoveryRequest',
    'envoy.service.discovery.v3.DiscoveryResponse',
    'envoy.extensions.transport_sockets.tls.v3.Secret',
    'istio.v1.auth.IstioCertificateRequest',
    'istio.v1.auth.IstioCertificateResponse',
    'skiff.registration.v1.AgentReport',
    'skiff.registration.v1.RegistrationStatus',
  ],
  bootstrap: [
    'envoy.config.bootstrap.v3.Bootstrap',
    'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    'envoy.extensions.bootstrap.internal_listener.v3.InternalListener',
  ],
};

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(root, 'dist', `skiff-agent-${process.platform}-${process.arch}`) },
    version: { type: 'string' },
  },
});
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`build-agent-binary: this builds for the machine it runs on; expected linux-x64, this is ${process.platform}-${process.arch}`);
  process.exit(1);
}
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) {
  console.error(`build-agent-binary: needs Node.js >= 20.12 (SEA assets); this is ${process.version}`);
  process.exit(1);
}

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const version = args.version ?? pkg.version;
const out = path.resolve(args.out);
fs.mkdirSync(path.dirname(out), { recursive: true });
const work = fs.mkdtempSync(path.join(path.dirname(out), '.agent-binary-'));

function step(what) {
  console.log(`build-agent-binary: ${what}`);
}

/**
 * Source substitutions for the bundle: both version lookups walk up from the module's file to
 * package.json, which a single executable does not have. Each must match exactly once, so a
 * change in those files fails the build instead of silently shipping "dev".
 */
const SUBSTITUTIONS = [
  {
    file: path.join(root, 'src', 'cli', 'version.ts'),
    from: /export function skiffVersion\(\): string \{/,
    to: `export function skiffVersion(): string {\n  return ${JSON.stringify(version)};`,
  },
  {
    file: path.join(root, 'agents', 'bootstrap.ts'),
    from: /let cachedVersion: string \| undefined;/,
    to: `let cachedVersion: string | undefined = ${JSON.stringify(version)};`,
  },
];

/** The SEA asset holding the agent's bundle, Brotli-compressed (step 3). */
const BUNDLE_ASSET = 'skiff-agent.js';

/**
 * The SEA's main script (CommonJS; `require` inside a SEA loads built-in modules only): runs the
 * bundle asset as a CommonJS module with this same `require` and `module`, `__filename` being the
 * executable. `getRawAsset` gives the asset's bytes in place (no copy); they are Brotli-compressed
 * (fewer of the executable's pages are read and stay mapped: ~0.2 instead of ~0.9 MiB), and
 * `latin1Slice` makes the one-byte string V8 compiles and keeps.
 */
const LOADER = `'use strict';
const { getRawAsset } = require('node:sea');
const { compileFunction } = require('node:vm');
const { dirname } = require('node:path');
const { brotliDecompressSync } = require('node:zlib');
const source = brotliDecompressSync(Buffer.from(getRawAsset(${JSON.stringify(BUNDLE_ASSET)}))).latin1Slice();
const main = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: ${JSON.stringify(BUNDLE_ASSET)} });
main.call(module.exports, module.exports, require, module, process.execPath, dirname(process.execPath));
`;

/**
 * zod's `locales` namespace (every translation of its error messages) reduced to English, the one
 * zod configures by default (zod/v4/classic/external.js); nothing in the agent selects another.
 */
const zodEnglishOnly = {
  name: 'skiff-zod-english-only',
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
      contents: 'export { default as en } from "./en.js";\n',
      loader: 'js',
    }));
  },
};

const substitute = {
  name: 'skiff-sea-substitutions',
  setup(build) {
    for (const sub of SUBSTITUTIONS) {
      const filter = new RegExp(`^${sub.file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`);
      build.onLoad({ filter }, async () => {
        const text = await fs.promises.readFile(sub.file, 'utf8');
        const hits = text.match(new RegExp(sub.from.source, 'g'))?.length ?? 0;
        if (hits !== 1) throw new Error(`${path.relative(root, sub.file)}: expected one match of ${sub.from}, found ${hits}; update scripts/build-agent-binary.mjs`);
        return { contents: text.replace(sub.from, sub.to), loader: 'ts' };
      });
    }
  },
};

try {
  // 1. Bundle.
  step(`bundling scripts/agent-binary-main.ts (version ${version})`);
  const esbuild = await import('esbuild');
  const bundle = path.join(work, 'skiff-agent.cjs');
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'scripts', 'agent-binary-main.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    metafile: true,
    logLevel: 'warning',
    define: { 'import.meta.url': '__skiffModuleUrl' },
    banner: { js: 'var __skiffModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [substitute, zodEnglishOnly],
    // Smaller source, less memory: V8 keeps the whole source of a script in the heap.
    minify: true,
    legalComments: 'none',
    charset: 'ascii',
  });
  const bundleBytes = fs.readFileSync(bundle);
  const nonAscii = bundleBytes.findIndex((b) => b > 0x7f);
  if (nonAscii >= 0) throw new Error(`the bundle must be ASCII (the loader reads it as Latin-1); byte ${nonAscii} is not`);
  const inputs = Object.keys(result.metafile.inputs);
  const native = inputs.filter((f) => /better-sqlite3|bindings|\.node$/.test(f));
  if (native.length > 0) throw new Error(`the agent bundle must not contain native modules, found: ${native.join(', ')}`);
  const locales = inputs.filter((f) => /zod\/v4\/locales\/(?!(en|index)\.js$)/.test(f));
  if (locales.length > 0) throw new Error(`zod locales other than English were bundled (${locales.length}); update zodEnglishOnly`);
  const store = inputs.filter((f) => f.startsWith('src/store/'));
  if (store.length > 0) throw new Error(`the agent bundle must not contain the control plane's store, found: ${store.join(', ')}`);

  // 2. Protobuf descriptors, one asset per proto set.
  step('writing the protobuf descriptor assets');
  const assets = {};
  const gen = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import fs from 'node:fs';
       import path from 'node:path';
       import protobuf from 'protobufjs';
       import { AGENT_PROTO_FILES, loadProtoFiles, protoAssetName } from './src/xds/protos/loader.ts';
       const required = ${JSON.stringify(REQUIRED_TYPES)};
       for (const [set, files] of Object.entries(AGENT_PROTO_FILES)) {
         const json = JSON.stringify(loadProtoFiles(files).toJSON());
         // Root.fromJSON drops enum value options (annotations only); everything else must survive.
         const noValueOptions = JSON.stringify(JSON.parse(json, (k, v) => (k === 'valuesOptions' ? undefined : v)));
         const again = protobuf.Root.fromJSON(JSON.parse(json));
         if (JSON.stringify(again.toJSON()) !== noValueOptions) throw new Error('the ' + set + ' descriptor does not round-trip through Root.fromJSON');
         again.resolveAll();
         for (const name of required[set] ?? []) again.lookupType(name); // throws when missing
         fs.writeFileSync(path.join(${JSON.stringify(work)}, protoAssetName(set)), json);
         console.log(protoAssetName(set));
       }`,
    ],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (gen.status !== 0) throw new Error('could not write the protobuf descriptors');
  for (const name of gen.stdout.split('\n').filter((l) => l.endsWith('.json'))) assets[name] = path.join(work, name);
  const protoAssets = Object.keys(assets).length;
  const packed = path.join(work, `${BUNDLE_ASSET}.br`);
  fs.writeFileSync(packed, zlib.brotliCompressSync(bundleBytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bundleBytes.length } }));
  assets[BUNDLE_ASSET] = packed;
  if (protoAssets !== Object.keys(REQUIRED_TYPES).length) throw new Error(`expected ${Object.keys(REQUIRED_TYPES).length} descriptor assets, wrote: ${Object.keys(assets).join(', ')}`);

  // 3. SEA blob, injected into a copy of this Node.js binary.
  step('preparing the SEA blob');
  const loader = path.join(work, 'loader.cjs');
  fs.writeFileSync(loader, LOADER);
  const blob = path.join(work, 'sea-prep.blob');
  const seaConfig = path.join(work, 'sea-config.json');
  fs.writeFileSync(
    seaConfig,
    JSON.stringify({ main: loader, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false, assets }, null, 2),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });
  const tmpBinary = path.join(work, path.basename(out));
  fs.copyFileSync(process.execPath, tmpBinary);
  fs.chmodSync(tmpBinary, 0o755);
  step(`injecting with ${POSTJECT}`);
  const npx = spawnSync('npx', ['--yes', POSTJECT, tmpBinary, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  // postject warns about ELF note sections without a name in the Node.js binary; the injection is
  // unaffected (the smoke test below runs the result).
  const noise = /^warning: Can't find string offset for section name/;
  const stderr = (npx.stderr ?? '').split('\n').filter((l) => l.trim() !== '' && !noise.test(l));
  if (stderr.length > 0) console.error(stderr.join('\n'));
  if (npx.status !== 0) throw new Error(`postject failed (exit ${npx.status})`);

  // Smoke test before replacing the previous binary.
  const said = execFileSync(tmpBinary, ['version'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } }).trim();
  if (said !== `skiff ${version}`) throw new Error(`the binary printed "${said}" for "version", expected "skiff ${version}"`);
  fs.renameSync(tmpBinary, out);
  const size = fs.statSync(out).size;
  step(`${path.relative(process.cwd(), out) || out}: ${(size / 1024 / 1024).toFixed(1)} MiB, ${said}, Node.js ${process.version}`);
} catch (err) {
  console.error(`build-agent-binary: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
