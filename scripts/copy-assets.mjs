#!/usr/bin/env node
// Copies non-TypeScript assets that the compiled code loads at run time (our .proto files) to dist/.
import fs from 'node:fs';
import path from 'node:path';

const pairs = [['src/xds/protos', 'dist/src/xds/protos']];
for (const [from, to] of pairs) {
  for (const entry of fs.readdirSync(from, { recursive: true })) {
    const file = String(entry);
    if (!file.endsWith('.proto')) continue;
    fs.mkdirSync(path.join(to, path.dirname(file)), { recursive: true });
    fs.copyFileSync(path.join(from, file), path.join(to, file));
  }
}
