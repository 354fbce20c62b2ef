'use strict';
// Loads the native addon: the per-platform package (`condlock-linux-x64-gnu`,
// installed through optionalDependencies, so `npm install` never compiles),
// or a binary built next to this file (a source checkout).
const { join } = require('node:path');
const { existsSync } = require('node:fs');

function platformTag() {
  if (process.platform === 'linux' && process.arch === 'x64') {
    // musl's loader is a file of its own; asking process.report would cost
    // more than the rest of loading.
    return existsSync('/lib/ld-musl-x86_64.so.1') ? 'linux-x64-musl' : 'linux-x64-gnu';
  }
  return `${process.platform}-${process.arch}`;
}

const tag = platformTag();
const local = join(__dirname, `condlock.${tag}.node`);
let native;
if (existsSync(local)) {
  native = require(local);
} else {
  try {
    native = require(`condlock-${tag}`);
  } catch (e) {
    throw new Error(
      `condlock has no native addon for ${tag}: the package condlock-${tag} is not installed ` +
        `(prebuilt packages exist for linux-x64-gnu; reinstall without --omit=optional) (${e.message})`,
    );
  }
}
module.exports = native;
