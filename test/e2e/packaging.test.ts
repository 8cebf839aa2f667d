/**
 * Packaging (issue 7 §1): the Dockerfile's steps, the npm tarball, the systemd units and the
 * single-file agent binary, each built from this checkout and run.
 *
 * There is no Docker engine here, so the Dockerfile is interpreted: each stage gets a directory
 * standing for its filesystem, WORKDIR/COPY/ENV/USER are applied to it, and every RUN command is
 * executed as written with `sh -c` in the stage's WORKDIR. The one RUN line that touches the
 * system (creating the user and the data directories) is checked to contain only
 * `groupadd`/`useradd`/`install -d` and its directories are created in the stage directory. Then
 * the image's ENTRYPOINT and CMD start the control plane, and its HEALTHCHECK must pass.
 *
 * Native addon: `npm ci` compiles better-sqlite3 from source when it cannot download a prebuilt
 * addon (60+ s on two cores, and there is no route to its download host here). The checkout's own
 * compiled addon is offered to prebuild-install as a local prebuild
 * (`npm_config_better_sqlite3_local_prebuilds`), the way a CI cache would; the commands stay the
 * Dockerfile's.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProcessGroup, freePort } from '../helpers/processes.js';
import { REPO, eventually } from '../helpers/skiff.js';
import { ensureDebianCommands } from '../helpers/supervisor.js';

/** One parsed Dockerfile instruction. */
interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Parses a Dockerfile: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + (lines[++i] ?? '').trim();
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m?.[1]) throw new Error(`Dockerfile:${start + 1}: cannot parse "${line}"`);
    out.push({ op: m[1].toUpperCase(), args: (m[2] ?? '').trim(), line: start + 1 });
  }
  return out;
}

/** A stage's filesystem stand-in. */
interface Stage {
  name: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string;
  users: Set<string>;
  exposed: number[];
  volumes: string[];
  healthcheck: string[];
  entrypoint: string[];
  cmd: string[];
}

/** Where container path `p` of `stage` lives on this machine. */
function inStage(stage: Stage, p: string): string {
  const abs = path.posix.isAbsolute(p) ? p : path.posix.join(stage.workdir, p);
  return path.join(stage.root, abs);
}

function copyInto(src: string, dest: string, destIsDir: boolean): void {
  if (fs.statSync(src).isDirectory()) {
    fs.mkdirSync(dest, { recursive: true });
    fs.cpSync(src, dest, { recursive: true });
  } else {
    const target = destIsDir ? path.join(dest, path.basename(src)) : dest;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(src, target);
    fs.chmodSync(target, fs.statSync(src).mode & 0o777);
  }
}

/** The RUN line that prepares the system: only these commands, with absolute paths. */
function runSystemLine(stage: Stage, command: string, where: string): void {
  for (const part of command.split('&&').map((p) => p.trim())) {
    const words = part.split(/\s+/);
    if (words[0] === 'groupadd') continue;
    if (words[0] === 'useradd') {
      stage.users.add(words.at(-1) ?? '');
      continue;
    }
    if (words[0] === 'install' && words.includes('-d')) {
      const dirs = words.slice(1).filter((w, i, all) => w.startsWith('/') && !['-o', '-g', '-m'].includes(all[i - 1] ?? ''));
      for (const d of dirs) fs.mkdirSync(inStage(stage, d), { recursive: true });
      continue;
    }
    throw new Error(`${where}: a RUN line with absolute paths may only create users and directories; found "${part}"`);
  }
}

/** Runs every instruction; returns the stages in order. */
function buildDockerfile(file: string, context: string, workRoot: string, runEnv: NodeJS.ProcessEnv): Stage[] {
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  for (const ins of parseDockerfile(fs.readFileSync(file, 'utf8'))) {
    const where = `Dockerfile:${ins.line}`;
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      assert.ok(m?.[1], `${where}: FROM`);
      assert.match(m[1], /^node:20[-.]/, `${where}: the image runs Node.js 20`);
      const name = m[2] ?? `stage-${stages.length}`;
      stage = { name, root: path.join(workRoot, name), workdir: '/', env: {}, user: 'root', users: new Set(['root']), exposed: [], volumes: [], healthcheck: [], entrypoint: [], cmd: [] };
      fs.mkdirSync(stage.root, { recursive: true });
      stages.push(stage);
      continue;
    }
    assert.ok(stage, `${where}: instruction before FROM`);
    switch (ins.op) {
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, ins.args);
        fs.mkdirSync(inStage(stage, stage.workdir), { recursive: true });
        break;
      case 'ENV':
        for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) stage.env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
        break;
      case 'COPY': {
        const words = ins.args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const dest = paths.pop()!;
        const source = from ? stages.find((s) => s.name === from) : undefined;
        if (from) assert.ok(source, `${where}: no stage ${from}`);
        const destIsDir = dest.endsWith('/') || paths.length > 1;
        for (const src of paths) copyInto(source ? inStage(source, src) : path.join(context, src), inStage(stage, dest), destIsDir);
        break;
      }
      case 'RUN': {
        if (/(^|\s)\/[A-Za-z]/.test(ins.args)) {
          runSystemLine(stage, ins.args, where);
          break;
        }
        const r = spawnSync('sh', ['-c', ins.args], { cwd: inStage(stage, stage.workdir), env: { ...process.env, ...runEnv, ...stage.env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
        assert.equal(r.status, 0, `${where}: RUN ${ins.args} failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
        break;
      }
      case 'USER':
        assert.ok(stage.users.has(ins.args), `${where}: USER ${ins.args} was never created`);
        stage.user = ins.args;
        break;
      case 'VOLUME':
        stage.volumes = JSON.parse(ins.args) as string[];
        break;
      case 'EXPOSE':
        stage.exposed = ins.args.split(/\s+/).map(Number);
        break;
      case 'HEALTHCHECK': {
        const m = /CMD\s+(\[.*\])$/.exec(ins.args);
        assert.ok(m?.[1], `${where}: HEALTHCHECK CMD in exec form`);
        stage.healthcheck = JSON.parse(m[1]) as string[];
        break;
      }
      case 'ENTRYPOINT':
        stage.entrypoint = JSON.parse(ins.args) as string[];
        break;
      case 'CMD':
        stage.cmd = JSON.parse(ins.args) as string[];
        break;
      default:
        throw new Error(`${where}: instruction ${ins.op} is not handled by this test`);
    }
  }
  return stages;
}

/** `/usr/local/bin/x` style command of the image, found in the stage's filesystem. */
function imageCommand(stage: Stage, argv: string[]): string[] {
  const [cmd, ...rest] = argv;
  assert.ok(cmd);
  const candidates = cmd.startsWith('/') ? [cmd] : ['/usr/local/bin', '/usr/bin'].map((d) => `${d}/${cmd}`);
  const found = candidates.map((c) => inStage(stage, c)).find((c) => fs.existsSync(c));
  assert.ok(found, `${cmd} is not in the image`);
  return [found, ...rest];
}

/** A directory offering this checkout's compiled better-sqlite3 addon as prebuild-install's local prebuild. */
function localPrebuilds(dir: string): NodeJS.ProcessEnv {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as { version: string };
  const name = `better-sqlite3-v${pkg.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-czf', path.join(dir, name), '-C', path.join(REPO, 'node_modules', 'better-sqlite3'), 'build/Release/better_sqlite3.node']);
  return { npm_config_better_sqlite3_local_prebuilds: dir, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' };
}

describe('packaging: Dockerfile, npm tarball, systemd units, single-file agent binary', { timeout: 600_000 }, () => {
  const group = new ProcessGroup();
  let tmp: string;
  let npmEnv: NodeJS.ProcessEnv;
  let stages: Stage[] = [];

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-pkg-'));
    npmEnv = { ...localPrebuilds(path.join(tmp, 'prebuilds')), npm_config_cache: process.env['npm_config_cache'] ?? path.join(os.homedir(), '.npm') };
  });
  after(async () => {
    if (process.exitCode) process.stderr.write(group.dump());
    await group.stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("the Dockerfile's steps build a runtime tree with production dependencies only, run as non-root, and it serves with a passing HEALTHCHECK", async () => {
    stages = buildDockerfile(path.join(REPO, 'Dockerfile'), REPO, path.join(tmp, 'image'), npmEnv);
    assert.equal(stages.length, 2, 'multi-stage: build and runtime');
    const runtime = stages.at(-1)!;
    assert.equal(runtime.user, 'skiff', 'the control plane runs as the non-root user skiff');
    assert.deepEqual(runtime.volumes, ['/var/lib/skiff']);
    assert.deepEqual(runtime.exposed, [15012, 15014, 8080]);
    const modules = inStage(runtime, '/opt/skiff/node_modules');
    for (const dev of ['typescript', 'eslint', 'tsx', 'typescript-eslint', '@types/better-sqlite3']) assert.equal(fs.existsSync(path.join(modules, dev)), false, `dev dependency ${dev} in the image`);
    for (const prod of ['@grpc/grpc-js', 'better-sqlite3/build/Release/better_sqlite3.node', 'hono']) assert.ok(fs.existsSync(path.join(modules, prod)), `${prod} missing from the image`);

    const [monitoring, grpc, api] = [await freePort(), await freePort(), await freePort()];
    const env = {
      PATH: process.env['PATH'] ?? '',
      ...runtime.env,
      SKIFF_HOME: inStage(runtime, '/opt/skiff'),
      SKIFF_DATA_DIR: inStage(runtime, '/var/lib/skiff'),
      SKIFF_CONFIG_DIR: inStage(runtime, '/etc/skiff/mesh'),
      SKIFF_LISTEN_ADDRESS: '127.0.0.1',
      SKIFF_GRPC_PORT: String(grpc),
      SKIFF_MONITORING_PORT: String(monitoring),
      SKIFF_API_PORT: String(api),
      SKIFF_DNS_NAMES: 'cp.mesh.internal,skiff.skiff-system',
    };
    const [cmd, ...args] = imageCommand(runtime, [...runtime.entrypoint, ...runtime.cmd]);
    const proc = group.add('image', spawn(cmd!, args, { cwd: inStage(runtime, runtime.workdir), env, stdio: ['ignore', 'pipe', 'pipe'] }));
    await eventually('the control plane of the image answers /readyz', async () => (await fetch(`http://127.0.0.1:${monitoring}/readyz`)).ok, 60_000, 300);
    const [hc, ...hcArgs] = imageCommand(runtime, runtime.healthcheck);
    const health = spawnSync(hc!, hcArgs, { env, encoding: 'utf8' });
    assert.equal(health.status, 0, `HEALTHCHECK failed: ${health.stderr}`);
    // The data dir (the volume) holds the CA root; the serving certificate carries the DNS names from env.
    assert.ok(fs.existsSync(path.join(env.SKIFF_DATA_DIR, 'trust-bundle.pem')), 'the CA root was written to the data volume');
    assert.match(proc.output(), /"grpcPort":\d+/);
    // The image carries the CA's native CSR verifier and uses it (scripts/build-native.mjs --require in the build stage).
    assert.ok(fs.existsSync(inStage(runtime, '/opt/skiff/dist/native/skiff_ecdsa.node')), 'dist/native/skiff_ecdsa.node missing from the image');
    assert.match(proc.output(), /"csrVerify":"native"[^\n]*"msg":"CA loaded"/);
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exited, 0);
    const down = spawnSync(hc!, hcArgs, { env, encoding: 'utf8' });
    assert.equal(down.status, 1, 'HEALTHCHECK fails when the control plane is down');
  });

  it('npm pack gives a tarball with the skiff bin that installs and runs', () => {
    const build = stages.find((s) => s.name === 'build');
    assert.ok(build, 'the Dockerfile test built the sources first');
    // The build stage's tree is a clean `npm run build` of the sources; the package also ships the
    // README and the example meshes, which the image does not need.
    const src = inStage(build, '/src');
    for (const extra of ['README.md', 'examples']) fs.cpSync(path.join(REPO, extra), path.join(src, extra), { recursive: true });
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: src, encoding: 'utf8', env: { ...process.env, ...npmEnv }, stdio: ['ignore', 'pipe', 'pipe'] })) as { filename: string; files: { path: string }[] }[];
    const tarball = path.join(tmp, packed[0]!.filename);
    const files = packed[0]!.files.map((f) => f.path);
    for (const f of ['dist/src/cli/main.js', 'dist/agents/index.js', 'dist/native/skiff_ecdsa.node', 'src/xds/protos/istio/ca.proto', 'package.json', 'README.md']) assert.ok(files.includes(f), `${f} is not in the tarball`);
    const unwanted = files.filter((f) => f.endsWith('.test.js') || f.startsWith('test/') || (f.endsWith('.ts') && !f.startsWith('examples/')) || f.includes('skiff-agent-linux'));
    assert.deepEqual(unwanted, [], 'tests, TypeScript sources or the agent binary in the tarball');

    const prefix = path.join(tmp, 'installed');
    execFileSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefix', prefix, tarball], { encoding: 'utf8', env: { ...process.env, ...npmEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    const bin = path.join(prefix, 'node_modules', '.bin', 'skiff');
    const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(execFileSync(bin, ['version'], { encoding: 'utf8', cwd: tmp }).trim(), `skiff ${version}`);
    // The installed package validates the example mesh it ships (it loads the Envoy protos from node_modules).
    const out = execFileSync(bin, ['validate', '-f', path.join(prefix, 'node_modules', 'skiff', 'examples', 'basic')], { encoding: 'utf8', cwd: tmp });
    assert.match(out, /^\d+ resources, 0 errors, /m);
  });

  it('systemd-analyze verify accepts both unit files', (t) => {
    if (ensureDebianCommands({ 'systemd-analyze': 'systemd' }).length > 0) {
      if (process.env['CI']) assert.fail('systemd-analyze is missing (Debian package systemd); .ci/run installs it');
      t.skip('systemd-analyze is not installed (Debian package systemd)');
      return;
    }
    // An alternate root with systemd's own units and the units' executables, so `verify` checks
    // the ExecStart paths as on an installed host.
    const root = path.join(tmp, 'sysroot');
    fs.mkdirSync(path.join(root, 'etc', 'systemd', 'system'), { recursive: true });
    fs.mkdirSync(path.join(root, 'usr', 'lib', 'systemd'), { recursive: true });
    fs.cpSync('/usr/lib/systemd/system', path.join(root, 'usr', 'lib', 'systemd', 'system'), { recursive: true, verbatimSymlinks: true });
    const units = ['skiff-agent.service', 'skiff-control-plane.service'];
    for (const unit of units) {
      const text = fs.readFileSync(path.join(REPO, 'agents', 'systemd', unit), 'utf8');
      fs.writeFileSync(path.join(root, 'etc', 'systemd', 'system', unit), text);
      const exec = /^ExecStart=(\S+)/m.exec(text)?.[1];
      assert.ok(exec, `${unit} has an ExecStart`);
      fs.mkdirSync(path.dirname(path.join(root, exec)), { recursive: true });
      fs.writeFileSync(path.join(root, exec), '#!/bin/sh\n', { mode: 0o755 });
      for (const option of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'Restart=always', 'CapabilityBoundingSet=\n']) assert.ok(text.includes(option), `${unit} lacks ${option.trim()}`);
      assert.match(text, /^User=skiff(-agent)?$/m, `${unit} runs as a dedicated user`);
    }
    const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8' });
    assert.equal(r.status, 0, `systemd-analyze verify: ${r.stdout}${r.stderr}`);
    assert.equal((r.stdout + r.stderr).trim(), '', `systemd-analyze verify warned: ${r.stdout}${r.stderr}`);
  });

  it('npm run build:agent-binary gives one executable that runs `skiff agent` from a directory without node_modules', () => {
    const out = path.join(tmp, 'bin', 'skiff-agent-linux-x64');
    fs.mkdirSync(path.dirname(out));
    execFileSync(process.execPath, [path.join(REPO, 'scripts', 'build-agent-binary.mjs'), '--out', out], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const bare = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-bare-'));
    try {
      const binary = path.join(bare, 'skiff-agent');
      fs.copyFileSync(out, binary);
      fs.chmodSync(binary, 0o755);
      const env = { PATH: '/usr/bin:/bin' };
      const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
      assert.equal(execFileSync(binary, ['version'], { cwd: bare, env, encoding: 'utf8' }).trim(), `skiff ${version}`);
      assert.match(execFileSync(binary, ['agent', '--help'], { cwd: bare, env, encoding: 'utf8' }), /--readiness-port <port>/);
      // Flags without the `agent` word run the agent; its config errors are the agent's own.
      const r = spawnSync(binary, ['--namespace', 'shop'], { cwd: bare, env, encoding: 'utf8' });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /invalid agent config: controlPlane: required/);
    } finally {
      fs.rmSync(bare, { recursive: true, force: true });
    }
  });
});
