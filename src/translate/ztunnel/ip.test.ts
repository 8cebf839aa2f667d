import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipBytes, ipText, parseCidr } from './ip.js';

void test('IPv4 and IPv6 literals become 4 and 16 raw bytes, and print back', () => {
  assert.deepEqual([...(ipBytes('198.18.7.10')?.bytes ?? [])], [198, 18, 7, 10]);
  for (const [text, printed] of [
    ['fd00:198:18::5', 'fd00:198:18::5'],
    ['::1', '::1'],
    ['::', '::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:10.0.0.7', '::ffff:a00:7'],
  ]) {
    const ip = ipBytes(text as string);
    assert.equal(ip?.bytes.length, 16, text);
    assert.equal(ipText(ip.bytes), printed);
  }
});

void test('CIDRs keep their prefix length; a single IP gets the full length; bad input is undefined', () => {
  assert.deepEqual(parseCidr('10.97.0.0/24') && { len: parseCidr('10.97.0.0/24')?.length, bytes: [...(parseCidr('10.97.0.0/24')?.bytes ?? [])] }, { len: 24, bytes: [10, 97, 0, 0] });
  assert.equal(parseCidr('fd00::1')?.length, 128);
  assert.equal(parseCidr('10.0.0.1')?.length, 32);
  for (const bad of ['not-an-ip', '10.0.0.0/33', '10.0.0.0/-1', 'fd00::/129', '10.0.0.256', 'fe80::1%eth0', '1.2.3.4/']) assert.equal(parseCidr(bad), undefined, bad);
  assert.equal(ipText(new Uint8Array(5)), undefined);
});
