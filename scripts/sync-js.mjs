#!/usr/bin/env node
// Writes the JavaScript shared by the Node and browser packages from its one
// source, `bindings-js/`: `errors.js` is copied to the browser package as an
// ES module and converted to CommonJS for the Node package (Node 20 cannot
// `require` an ES module, and a published package cannot reach outside its
// folder).
//
//   node scripts/sync-js.mjs           write the copies
//   node scripts/sync-js.mjs --check   exit 1 if a copy differs from its source
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const banner = (to) =>
  `// GENERATED from bindings-js/errors.js by scripts/sync-js.mjs (${to}): do not edit.\n`;

const source = readFileSync(join(root, 'bindings-js/errors.js'), 'utf8');

function toCommonJs(text) {
  const names = [];
  const body = text.replace(/^export (class|const|function) ([A-Za-z_$][\w$]*)/gm, (_, kind, name) => {
    names.push(name);
    return `${kind} ${name}`;
  });
  if (/^export /m.test(body)) {
    throw new Error('bindings-js/errors.js: only `export class|const|function` can be converted');
  }
  return `'use strict';\n${body}\nmodule.exports = { ${names.join(', ')} };\n`;
}

const outputs = [
  ['bindings-wasm/js/errors.js', banner('ES module') + source],
  ['bindings-node/errors.cjs', banner('CommonJS') + toCommonJs(source)],
];

let stale = 0;
for (const [path, text] of outputs) {
  const file = join(root, path);
  const now = existsSync(file) ? readFileSync(file, 'utf8') : null;
  if (now === text) continue;
  if (check) {
    console.error(`sync-js: ${path} differs from bindings-js/errors.js: run node scripts/sync-js.mjs`);
    stale += 1;
  } else {
    writeFileSync(file, text);
    console.log(`sync-js: wrote ${path}`);
  }
}
process.exit(stale ? 1 : 0);
