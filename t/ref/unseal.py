#!/usr/bin/python3
"""Reference reader of sealed code packages, docs/code-format.md
("Sealed code packages").

Written from the document, not from the C, as a test oracle: the C
(ngx_code_router/core/cr_seal.c) is the product's only implementation;
this script exists so that the document and the C cannot drift apart
silently.  libsodium's primitives come from PyNaCl (Debian's
python3-nacl), SHA-256 from hashlib.

usage: unseal.py PRINTER.key [--manifest] < PACKAGE
    writes the plain text to stdout (or, with --manifest, the manifest as
    the document's JSON) only once the whole package is verified; exit 1
    with the reason on stderr if it is not a sound package for the key.
"""
import hashlib
import sys

from nacl import bindings as sodium

MAGIC = b"CRSEAL"
HEADER = 144
RECORD_MAX = 65536
ABYTES = 17
TAG_MESSAGE, TAG_PUSH, TAG_FINAL = 0, 1, 3


class Refused(Exception):
    pass


def read_key(path):
    # "code-router printer secret key v1 " PK " " SK "\n", lower-case hex.
    line = open(path, "rb").read()
    prefix = b"code-router printer secret key v1 "
    if len(line) != 164 or not line.startswith(prefix) or line[-1:] != b"\n":
        raise Refused("not a printer's secret key file")
    pk_hex, sk_hex = line[len(prefix):-1].split(b" ")
    if any(c not in b"0123456789abcdef" for c in pk_hex + sk_hex):
        raise Refused("not lower-case hex")
    pk, sk = bytes.fromhex(pk_hex.decode()), bytes.fromhex(sk_hex.decode())
    if sodium.crypto_scalarmult_base(sk) != pk:
        raise Refused("the key file's halves do not belong together")
    return pk, sk


def be(b):
    return int.from_bytes(b, "big")


def manifest(m):
    # 62 + L bytes: version, format, kid, PIN digits, from, count, bytes,
    # SHA-256, L, prefix.
    if len(m) < 62 or m[0] != 1:
        raise Refused("manifest: not version 1")
    fmt, kid, pin = m[1], m[2], m[3]
    first, count, nbytes = be(m[4:12]), be(m[12:20]), be(m[20:28])
    sha, plen = m[28:60], be(m[60:62])
    prefix = m[62:]
    if plen > 1024 or len(prefix) != plen:
        raise Refused("manifest: its length")
    if fmt not in (1, 2):
        raise Refused("manifest: format")
    if pin != 0 and (fmt != 2 or not 6 <= pin <= 12):
        raise Refused("manifest: PIN digits")
    if count < 1 or first + count - 1 > 2**40 - 1:
        raise Refused("manifest: serials")
    lines = count + (1 if fmt == 2 else 0)
    if nbytes < lines:
        raise Refused("manifest: fewer bytes than lines")
    if any(c in b"\0,\"\r\n" for c in prefix):
        raise Refused("manifest: the prefix")
    return dict(format=fmt, kid=kid, pin_digits=pin, first=first,
                count=count, bytes=nbytes, sha256=sha, prefix=prefix,
                lines=lines)


def json_string(b):
    # As the API escapes strings: " \ control characters, and < > & '
    # as \u00XX; bytes that are not UTF-8 as U+FFFD.
    out = []
    for ch in b.decode("utf-8", errors="replace"):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "<>&'\x7f" or ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        elif ch in "\u2028\u2029":
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def manifest_json(pk, m):
    return ("{\n"
            '  "package": "code-router sealed codes",\n'
            '  "version": 1,\n'
            '  "printer": "%s",\n'
            '  "kid": %d,\n'
            '  "from": %d,\n'
            '  "to": %d,\n'
            '  "count": %d,\n'
            '  "format": "%s",\n'
            '  "pin_digits": %d,\n'
            '  "url_prefix": "%s",\n'
            '  "lines": %d,\n'
            '  "bytes": %d,\n'
            '  "sha256": "%s"\n'
            "}\n") % (pk.hex(), m["kid"], m["first"],
                      m["first"] + m["count"] - 1, m["count"],
                      "csv" if m["format"] == 2 else "codes",
                      m["pin_digits"], json_string(m["prefix"]),
                      m["lines"], m["bytes"], m["sha256"].hex())


def unseal(data, pk, sk):
    if len(data) < HEADER:
        raise Refused("truncated, or not a package")
    h = data[:HEADER]
    if h[0:6] != MAGIC:
        raise Refused("not a sealed code package")
    if be(h[6:8]) != 1:
        raise Refused("version %d" % be(h[6:8]))
    if h[8:40] != pk:
        raise Refused("sealed to another printer")
    try:
        key = sodium.crypto_box_seal_open(h[40:120], pk, sk)
    except Exception:
        raise Refused("the package key does not open")
    st = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(st, h[120:144],
                                                           key)
    off, r, text, m = HEADER, 0, [], None
    while True:
        if off + 4 > len(data):
            raise Refused("truncated before a record's length")
        ln = data[off:off + 4]
        n = be(ln)
        if n > RECORD_MAX:
            raise Refused("record %d: length %d" % (r, n))
        c = data[off + 4:off + 4 + n + ABYTES]
        if len(c) != n + ABYTES:
            raise Refused("truncated inside record %d" % r)
        ad = (h if r == 0 else b"") + ln
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                st, c, ad)
        except Exception:
            raise Refused("record %d fails authentication" % r)
        off += 4 + n + ABYTES
        if r == 0:
            if tag != TAG_PUSH:
                raise Refused("record 0 is not tagged PUSH")
            m = manifest(plain)
        else:
            if tag not in (TAG_MESSAGE, TAG_FINAL):
                raise Refused("record %d has tag %d" % (r, tag))
            text.append(plain)
            if tag == TAG_FINAL:
                break
        r += 1
    if off != len(data):
        raise Refused("bytes after the final record")
    text = b"".join(text)
    if (len(text) != m["bytes"] or text.count(b"\n") != m["lines"]
            or hashlib.sha256(text).digest() != m["sha256"]):
        raise Refused("the text is not the manifest's")
    return text, m


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--manifest"]):
        sys.exit(__doc__)
    try:
        pk, sk = read_key(sys.argv[1])
        text, m = unseal(sys.stdin.buffer.read(), pk, sk)
    except Refused as e:
        sys.stderr.write("unseal.py: %s\n" % e)
        sys.exit(1)
    if sys.argv[2:]:
        sys.stdout.write(manifest_json(pk, m))
    else:
        sys.stdout.buffer.write(text)


if __name__ == "__main__":
    main()
