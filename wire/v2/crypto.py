"""Keys, encryption and short tags of wire format v2.

Encrypt-then-MAC with independent keys: XChaCha20 (libsodium's IETF construction, block counter
from 1; taken from PyNaCl's AEAD, whose ciphertext without its tag is exactly the XChaCha20 stream
XOR the plaintext) and an 8-byte keyed BLAKE2b tag. A forgery attempt succeeds with probability 2**-64;
every attempt must be sent through the satellite network as the vessel's modem (or, towards the vessel,
as the shore's network account), so it costs a billed message and a satellite session.

Subkeys are derived from the v1 link key and the v1 crew epoch key with BLAKE2b and a purpose label,
so no new key exchange is needed: a vessel switching to v2 keeps its keys.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from ..crypto import KEY_BYTES
from ..errors import AuthenticationError, LocalWireError

TAG_BYTES = 8
NONCE_BYTES = 24

FRAME_ENC = b"sb2-frame-enc"
FRAME_MAC = b"sb2-frame-mac"
FRAME_CREW_MAC = b"sb2-frame-crew"
CREW_ENC = b"sb2-crew-enc"
CREW_MAC = b"sb2-crew-mac"


def derive(key: bytes, label: bytes, data: bytes = b"") -> bytes:
    """A 32-byte subkey: BLAKE2b-256 keyed with ``key``, personalised with ``label``, over ``data``."""
    if len(key) != KEY_BYTES:
        raise LocalWireError("key must be 32 bytes")
    return hashlib.blake2b(data, key=key, digest_size=KEY_BYTES, person=label.ljust(16, b"\0")).digest()


def stream_xor(key: bytes, nonce: bytes, data: bytes) -> bytes:
    """XChaCha20 of ``data`` (its own inverse). Nonces must never repeat under one key."""
    if len(nonce) != NONCE_BYTES:
        raise LocalWireError("nonce must be 24 bytes")
    return crypto_aead_xchacha20poly1305_ietf_encrypt(data, None, nonce, key)[: len(data)]


def tag(key: bytes, *parts: bytes) -> bytes:
    """8-byte keyed BLAKE2b over length-prefixed ``parts`` (so part boundaries are authenticated)."""
    mac = hashlib.blake2b(digest_size=TAG_BYTES, key=key)
    for part in parts:
        mac.update(struct.pack(">I", len(part)))
        mac.update(part)
    return mac.digest()


def check_tag(key: bytes, expected: bytes, *parts: bytes) -> None:
    if not hmac.compare_digest(tag(key, *parts), expected):
        raise AuthenticationError("tag does not verify")
