// The compiled addon (node-gyp puts it under build/Release). Loaded by imageio/decode.ts, which falls
// back to sharp when this throws (not built: no libturbojpeg0-dev or no compiler on the machine).
module.exports = require('./build/Release/turbojpeg.node');
