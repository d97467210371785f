#!/usr/bin/env python3
"""Reference implementation of the PIN in docs/code-format.md ("The PIN").

Written from the document, not from the C, as a test oracle: the C
(ngx_code_router/core/cr_pin.c) is the product's only implementation; this
script exists so that the document and the C cannot drift apart silently.
The code column comes from code_format.py, the reference of the code.

usage: pin.py MASTER_HEX KID DIGITS SERIAL...
    prints "serial,code,,pin" per serial: the rows of
    code-router mint --format csv --pin --pin-digits DIGITS
"""
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from code_format import seal, siphash24  # noqa: E402


def pin_key(master, kid):
    # crypto_kdf_derive_from_key(16, subkey_id = kid, ctx = "CRPIN001", K):
    # BLAKE2b-128 keyed by K, salt = kid (8 bytes LE) + 8 zero bytes,
    # personalisation = "CRPIN001" + 8 zero bytes, empty message.
    return hashlib.blake2b(b"", digest_size=16, key=master,
                           salt=struct.pack("<Q", kid) + bytes(8),
                           person=b"CRPIN001" + bytes(8)).digest()


def pin(master, kid, serial, digits):
    assert 6 <= digits <= 12 and 0 <= serial < 2 ** 40 and 0 <= kid < 256
    key = pin_key(master, kid)
    msg = bytes([1, kid]) + serial.to_bytes(5, "big") + bytes([digits])
    h = siphash24(key, msg + b"\x00") + siphash24(key, msg + b"\x01")
    value = int.from_bytes(h, "big") * 10 ** digits >> 128
    return "%0*d" % (digits, value)


if __name__ == "__main__":
    # BLAKE2b's first keyed known answer (blake2b-kat.txt of the BLAKE2
    # authors: key 00..3f, empty message): the KDF is keyed BLAKE2b.
    assert hashlib.blake2b(b"", key=bytes(range(64))).hexdigest() == (
        "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2"
        "f02871799aaa4786b5e996e8f0f4eb981fc214b005f42d2f"
        "f4233499391653df7aefcbc13fc51568")
    # SipHash-2-4's own published test vector (key 00..0f, message 00..0e).
    assert siphash24(bytes(range(16)), bytes(range(15))).hex() == (
        "e545be4961ca29a1")
    master = bytes.fromhex(sys.argv[1])
    kid, digits = int(sys.argv[2]), int(sys.argv[3])
    for s in sys.argv[4:]:
        serial = int(s)
        print("%d,%s,,%s" % (serial, seal(master, kid, serial),
                             pin(master, kid, serial, digits)))
