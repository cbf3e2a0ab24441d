// npm links the bins of dependencies into node_modules/.bin but not the package's own; link `ssd` so
// that `npx ssd <command>` works from the repository root after `npm install`.
const fs = require('node:fs');
const path = require('node:path');
const binDir = path.join(__dirname, '..', 'node_modules', '.bin');
const link = path.join(binDir, 'ssd');
try {
  fs.mkdirSync(binDir, { recursive: true });
  try { fs.unlinkSync(link); } catch {}
  fs.symlinkSync(path.join('..', '..', 'bin', 'ssd.js'), link);
} catch (err) {
  console.warn(`ssd: could not link node_modules/.bin/ssd (${err.message}); use "node bin/ssd.js" instead`);
}
