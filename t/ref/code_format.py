#!/usr/bin/env python3
"""Reference implementation of the code format in docs/code-format.md.

Written from the document, not from the C, as a test oracle: the C codec
(ngx_code_router/core/cr_codec.c) is the product's only implementation; this
script exists so that the document and the C cannot drift apart silently.

usage: code_format.py MASTER_HEX KID SERIAL...   prints one code per serial
"""
import hashlib
import struct
import sys

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MASK64 = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK64


def siphash24(key, msg):
    k0, k1 = struct.unpack("<QQ", key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rnd():
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & MASK64; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        v2 = (v2 + v3) & MASK64; v3 = rotl(v3, 16); v3 ^= v2
        v0 = (v0 + v3) & MASK64; v3 = rotl(v3, 21); v3 ^= v0
        v2 = (v2 + v1) & MASK64; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)

    tail = len(msg) % 8
    last = bytes(msg[len(msg) - tail:]) + bytes(7 - tail) + bytes([len(msg) & 0xFF])
    blocks = msg[:len(msg) - tail] + last
    for i in range(0, len(blocks), 8):
        m = struct.unpack("<Q", blocks[i:i + 8])[0]
        v3 ^= m
        rnd(); rnd()
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(4):
        rnd()
    return struct.pack("<Q", v0 ^ v1 ^ v2 ^ v3)


def kdf(master, subkey_id):
    # libsodium crypto_kdf_derive_from_key: BLAKE2b keyed by the master key,
    # salt = subkey id (8 bytes LE) + 8 zero bytes, personal = ctx + 8 zeros.
    return hashlib.blake2b(b"", digest_size=16, key=master,
                           salt=struct.pack("<Q", subkey_id) + bytes(8),
                           person=b"CRCODE01" + bytes(8)).digest()


def prf40(key, msg):
    return int.from_bytes(siphash24(key, msg)[:5], "big")


def seal(master, kid, serial):
    k_mac, k_enc = kdf(master, 2 * kid), kdf(master, 2 * kid + 1)
    tag = prf40(k_mac, bytes([1, kid]) + serial.to_bytes(5, "big"))
    c = serial ^ prf40(k_enc, tag.to_bytes(5, "big"))
    value = (((1 << 8) | kid) << 80) | (c << 40) | tag
    return "".join(ALPHABET[(value >> (5 * (17 - i))) & 31] for i in range(18))


if __name__ == "__main__":
    # SipHash-2-4's own published test vector (key 00..0f, message 00..0e).
    assert siphash24(bytes(range(16)), bytes(range(15))).hex() == "e545be4961ca29a1"
    master = bytes.fromhex(sys.argv[1])
    for s in sys.argv[3:]:
        print(seal(master, int(sys.argv[2]), int(s)))
