/**
 * The Ansible roles' static checks (issue 7 §2): `ansible-lint` with the production profile (no
 * skipped rules, no ignore file), the playbooks' syntax against the example inventory, and what
 * the roles' templates render for a standard host (no prefix, systemd): `systemd-analyze verify`
 * accepts both units and the agent's `agent.yaml` is a valid agent configuration.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAgentConfig } from '../../agents/config.js';
import { REPO } from '../helpers/skiff.js';
import { ensureDebianCommands } from '../helpers/supervisor.js';

const VENV_BIN = path.join(REPO, '.venv', 'bin');
const ANSIBLE_DIR = path.join(REPO, 'ansible');
const ENV = { ...process.env, PATH: `${VENV_BIN}:${process.env['PATH'] ?? ''}`, ANSIBLE_CONFIG: path.join(ANSIBLE_DIR, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1', NO_COLOR: '1' };

const skip = fs.existsSync(path.join(VENV_BIN, 'ansible-lint')) || process.env['CI'] ? false : 'needs ansible-core and ansible-lint in the project venv (npm run setup)';

function run(cmd: string, args: string[], cwd = ANSIBLE_DIR): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, env: ENV, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('ansible roles: lint, syntax and rendered files', { skip, timeout: 240_000 }, () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ansible-'));
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('ansible-lint passes with the production profile', () => {
    const r = run(path.join(VENV_BIN, 'ansible-lint'), []);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Profile 'production' was required, and it passed/);
    assert.equal(fs.existsSync(path.join(ANSIBLE_DIR, '.ansible-lint-ignore')), false, 'no ignore file');
    assert.doesNotMatch(fs.readFileSync(path.join(ANSIBLE_DIR, '.ansible-lint'), 'utf8'), /skip_list|warn_list|exclude_paths/);
  });

  it('the playbooks pass a syntax check against the example inventory', () => {
    for (const book of ['site.yml', 'control-plane.yml', 'agents.yml']) {
      const r = run(path.join(VENV_BIN, 'ansible-playbook'), ['--syntax-check', '-i', 'inventory/example/hosts.yml', book]);
      assert.equal(r.code, 0, `${book}: ${r.out}`);
    }
  });

  it("the roles' templates render a valid agent.yaml and unit files that systemd-analyze verify accepts", (t) => {
    const out = path.join(tmp, 'root');
    const roles = path.join(ANSIBLE_DIR, 'roles');
    const hostVars = {
      skiff_control_plane_address: '192.0.2.10',
      skiff_agent_namespace: 'shop',
      skiff_agent_service_account: 'web',
      skiff_agent_workload_name: 'web-1',
      skiff_agent_workload_ip: '192.0.2.21',
      skiff_agent_labels: { app: 'web', version: 'v1' },
      skiff_agent_envoy_path: '/opt/skiff-agent/envoy-venv/lib/python3.11/site-packages/envoy/_bin/envoy',
      skiff_agent_extra_config: { probe: { httpGet: { port: 9080, path: '/healthz' }, periodSeconds: 5 } },
      skiff_control_plane_dns_names: ['skiff.mesh.internal'],
    };
    const renders = [
      ['skiff_agent/templates/agent.yaml.j2', 'etc/skiff/agent.yaml'],
      ['skiff_agent/templates/skiff-agent.service.j2', 'etc/systemd/system/skiff-agent.service'],
      ['skiff_agent/templates/supervisor-skiff-agent.conf.j2', 'etc/supervisor/conf.d/skiff-agent.conf'],
      ['skiff_control_plane/templates/skiff-control-plane.service.j2', 'etc/systemd/system/skiff-control-plane.service'],
      ['skiff_control_plane/templates/supervisor-skiff-control-plane.conf.j2', 'etc/supervisor/conf.d/skiff-control-plane.conf'],
    ];
    const playbook = path.join(tmp, 'render.yml');
    fs.writeFileSync(
      playbook,
      JSON.stringify([
        {
          hosts: 'localhost',
          gather_facts: false,
          vars_files: ['skiff_agent/defaults/main.yml', 'skiff_agent/vars/main.yml', 'skiff_control_plane/defaults/main.yml', 'skiff_control_plane/vars/main.yml'].map((f) => path.join(roles, f)),
          tasks: [
            { name: 'Directories', 'ansible.builtin.file': { path: '{{ item }}', state: 'directory', mode: '0755' }, loop: [...new Set(renders.map(([, to]) => path.dirname(path.join(out, to!))))] },
            ...renders.map(([from, to]) => ({ name: `Render ${from}`, 'ansible.builtin.template': { src: path.join(roles, from!), dest: path.join(out, to!), mode: '0644' } })),
          ],
        },
      ]),
    );
    // Host variables as extra vars: the role defaults loaded as vars_files would override play vars.
    const extraVars = path.join(tmp, 'host-vars.json');
    fs.writeFileSync(extraVars, JSON.stringify({ ...hostVars, ansible_python_interpreter: path.join(VENV_BIN, 'python') }));
    const r = run(path.join(VENV_BIN, 'ansible-playbook'), ['-i', 'localhost,', '-c', 'local', '-e', `@${extraVars}`, playbook]);
    assert.equal(r.code, 0, r.out);

    // agent.yaml as the role writes it is accepted by the agent.
    const config = loadAgentConfig({ file: path.join(out, 'etc/skiff/agent.yaml'), env: {} });
    assert.equal(config.controlPlane, '192.0.2.10:15012');
    assert.equal(config.workloadName, 'web-1');
    assert.equal(config.rootCertPath, '/etc/skiff/root-cert.pem');
    assert.equal(config.tokenPath, '/etc/skiff/bootstrap-token');
    assert.equal(config.stateDir, '/var/lib/skiff-agent');
    assert.equal(config.socketDir, '/run/skiff-agent');
    assert.equal(config.readinessPort, 15021);
    assert.deepEqual(config.labels, { app: 'web', version: 'v1' });
    assert.deepEqual(config.probe, { httpGet: { port: 9080, path: '/healthz' }, periodSeconds: 5 });

    const serviceCp = fs.readFileSync(path.join(out, 'etc/systemd/system/skiff-control-plane.service'), 'utf8');
    assert.match(serviceCp, /^ExecStart=\/usr\/bin\/node \/opt\/skiff\/node_modules\/skiff\/dist\/src\/cli\/main\.js serve --data-dir \/var\/lib\/skiff --config-dir \/etc\/skiff\/mesh .*--dns-name=skiff\.mesh\.internal --ip=192\.0\.2\.10$/m);

    if (ensureDebianCommands({ 'systemd-analyze': 'systemd' }).length > 0) {
      if (process.env['CI']) assert.fail('systemd-analyze is missing (Debian package systemd)');
      t.skip('systemd-analyze is not installed (Debian package systemd)');
      return;
    }
    fs.mkdirSync(path.join(out, 'usr', 'lib', 'systemd'), { recursive: true });
    fs.cpSync('/usr/lib/systemd/system', path.join(out, 'usr', 'lib', 'systemd', 'system'), { recursive: true, verbatimSymlinks: true });
    for (const exe of ['usr/local/bin/skiff-agent', 'usr/bin/node']) {
      fs.mkdirSync(path.dirname(path.join(out, exe)), { recursive: true });
      fs.writeFileSync(path.join(out, exe), '#!/bin/sh\n', { mode: 0o755 });
    }
    const v = spawnSync('systemd-analyze', ['verify', `--root=${out}`, 'skiff-agent.service', 'skiff-control-plane.service'], { encoding: 'utf8' });
    assert.equal(v.status, 0, `${v.stdout}${v.stderr}`);
    assert.equal(`${v.stdout}${v.stderr}`.trim(), '', `systemd-analyze verify warned: ${v.stdout}${v.stderr}`);
  });
});
