const { execFileSync } = require('node:child_process');
const prepareNestCjs = require('./nest-cjs');

module.exports = async () => {
  prepareNestCjs();
  // Integration tests that kill and restart a service run the built apps, as the images do.
  execFileSync(process.execPath, [`${__dirname}/../scripts/build.mjs`, '--if-stale'], { stdio: 'inherit' });
};
