// The independent compressor of t/35-gs1-compressed.t: for each GS1
// Digital Link URL on stdin, one a line, GS1's compression prototype as
// digital-link.js (locked in package-lock.json) ships it writes the
// compressed URL (compressWebUri, its defaults: optimisations on, query
// pairs compressed too) and reads it back (decompressWebUri); prints
// "COMPRESSED<TAB>DECOMPRESSED" a line, or "error<TAB>MESSAGE".
'use strict';

const { compressWebUri, decompressWebUri } =
    require('digital-link.js/src/compression');

const lines = require('fs').readFileSync(0, 'utf8').split('\n');
if (lines[lines.length - 1] === '') {
    lines.pop();
}
process.stdout.write(lines.map(l => {
    try {
        const z = compressWebUri(l);
        return z + '\t' + decompressWebUri(z) + '\n';
    } catch (e) {
        return 'error\t' + String(e.message).split('\n')[0] + '\n';
    }
}).join(''));
