// The independent judge of t/25-gs1-oracle.t: digital-link.js (locked in
// package-lock.json) decides whether each URI on stdin, one a line, is a
// valid GS1 Digital Link; prints "valid" or "invalid" a line, in order.
//
// DigitalLink(uri).isValid() re-encodes the link before it checks it (a
// repeated qualifier collapses into one, a 13-digit GTIN is zero-padded),
// so its own two checks are applied to the URI as written: the grammar
// (util.validateUrl) on the URI with the custom stem removed (the
// library's removeCustomPath, with the stem its decoder found), and the
// identifier's check digit (CheckDigit.validateCheckDigit).
'use strict';

const { DigitalLink, Utils, CheckDigit } = require('digital-link.js');
const { validateUrl } = require('digital-link.js/src/util');

function judge(uri) {
    let dl;
    try {
        dl = DigitalLink(uri);
    } catch (e) {
        return false;
    }
    const bare = Utils.removeCustomPath(uri, dl.getDomain());
    if (!validateUrl(bare)) {
        return false;
    }
    return dl.isCheckDigitValid();
}

const lines = require('fs').readFileSync(0, 'utf8').split('\n');
if (lines[lines.length - 1] === '') {
    lines.pop();
}
process.stdout.write(lines.map(l => (judge(l) ? 'valid' : 'invalid') + '\n').join(''));
