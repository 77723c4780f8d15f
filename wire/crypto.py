"""Keys and authenticated encryption for frames and for sealed crew content (PyNaCl).

Frame protection: the vessel and the shore each hold an X25519 key pair. Both sides derive the same
32-byte link key from their own secret and the peer's public key (``Box.shared_key``, then BLAKE2b with
a purpose label). Frames are sealed with XChaCha20-Poly1305 (IETF AEAD): the 24-byte nonce is *implicit*,
built from the frame header (version, direction, key slot) and the frame counter, so the frame carries
only the counter as a varint and the 16-byte tag. The header and counter are also the associated data,
so a changed byte anywhere fails verification.

Crew content sealing (against the vessel operator): at start-up the gateway makes an *epoch* key pair
that lives only in RAM, derives an epoch key with the shore's crew public key, and seals each crew
message with it as it is accepted. The disk holds the epoch's public half (sent ashore once per epoch) and
the sealed bytes, never a key that opens them. The nonce is derived from the record id, unique per vessel.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey

from .errors import AuthenticationError, LocalWireError

TAG_BYTES = 16
KEY_BYTES = 32
PUBLIC_KEY_BYTES = 32

_FRAME_LABEL = b"sb-link-v1"
_CREW_LABEL = b"sb-crew-v1"


def _kdf(shared: bytes, label: bytes) -> bytes:
    return hashlib.blake2b(shared, digest_size=KEY_BYTES, person=label.ljust(16, b"\0")).digest()


def link_key(own_secret: PrivateKey, peer_public: PublicKey) -> bytes:
    """The symmetric key shared by a vessel and the shore (same result on both ends)."""
    return _kdf(Box(own_secret, peer_public).shared_key(), _FRAME_LABEL)


def frame_nonce(header: int, counter: int) -> bytes:
    return b"SBF" + bytes([header]) + struct.pack(">Q", counter) + bytes(12)


def aead_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise LocalWireError("key must be 32 bytes")
    return crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)


def aead_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    if len(ciphertext) < TAG_BYTES:
        raise AuthenticationError("ciphertext shorter than its tag")
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key)
    except CryptoError as exc:
        raise AuthenticationError("frame failed authentication") from exc


def _crew_nonce(rid: int) -> bytes:
    return b"SBC" + bytes([1]) + struct.pack(">Q", rid) + bytes(12)


@dataclass
class CrewEpoch:
    """The gateway's RAM-only crew sealing key for one run (epoch)."""

    number: int
    secret: PrivateKey
    key: bytes

    @classmethod
    def start(cls, number: int, crew_public: PublicKey) -> CrewEpoch:
        secret = PrivateKey.generate()
        return cls(number, secret, _kdf(Box(secret, crew_public).shared_key(), _CREW_LABEL))

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.secret.public_key)

    def seal(self, rid: int, plaintext: bytes) -> bytes:
        return aead_seal(self.key, _crew_nonce(rid), plaintext, struct.pack(">I", self.number))


def crew_epoch_key(crew_secret: PrivateKey, epoch_public: bytes) -> bytes:
    """Shore side: the key of a crew epoch whose public key was announced (``CrewEpoch.key``)."""
    if len(epoch_public) != PUBLIC_KEY_BYTES:
        raise AuthenticationError("epoch public key must be 32 bytes")
    return _kdf(Box(crew_secret, PublicKey(epoch_public)).shared_key(), _CREW_LABEL)


def open_crew(
    crew_secret: PrivateKey, epoch_number: int, epoch_public: bytes, rid: int, sealed: bytes
) -> bytes:
    """Shore side: open crew content sealed by an epoch whose public key was announced."""
    key = crew_epoch_key(crew_secret, epoch_public)
    return aead_open(key, _crew_nonce(rid), sealed, struct.pack(">I", epoch_number))
