import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatLabelSelector, matchesLabelSelector, parseLabelSelector } from './label-selector.js';

const web = { app: 'web', tier: 'frontend', canary: '' };
const db = { app: 'db', tier: 'backend' };

function select(selector: string): string[] {
  const reqs = parseLabelSelector(selector);
  return Object.entries({ web, db }).filter(([, labels]) => matchesLabelSelector(reqs, labels)).map(([n]) => n);
}

describe('label selectors (Kubernetes string form)', () => {
  it('selects by equality, inequality, sets and existence with Kubernetes semantics', () => {
    assert.deepEqual(select(''), ['web', 'db']);
    assert.deepEqual(select('app=web'), ['web']);
    assert.deepEqual(select('app==db'), ['db']);
    assert.deepEqual(select('app!=web'), ['db']);
    assert.deepEqual(select('canary!=yes'), ['web', 'db'], '!= also matches objects without the label');
    assert.deepEqual(select('tier in (frontend, edge)'), ['web']);
    assert.deepEqual(select('tier notin (frontend)'), ['db']);
    assert.deepEqual(select('canary'), ['web']);
    assert.deepEqual(select('!canary'), ['db']);
    assert.deepEqual(select('app in (web,db),tier=backend'), ['db']);
  });

  it('refuses malformed selectors with the clause named', () => {
    assert.throws(() => parseLabelSelector('app=web,,tier=x'), /empty requirement/);
    assert.throws(() => parseLabelSelector('tier in (a,b'), /unbalanced/);
    assert.throws(() => parseLabelSelector('replicas>3'), /not supported \("replicas>3"\)/);
    assert.throws(() => parseLabelSelector('app=we b'), /invalid label value "we b" in "app=we b"/);
    assert.throws(() => parseLabelSelector('=web'), /missing label key in "=web"/);
  });

  it('round-trips through its string form', () => {
    const text = 'app=web,tier!=db,env in (a,b),zone notin (x),canary,!legacy';
    assert.equal(formatLabelSelector(parseLabelSelector(text)), text);
  });
});
