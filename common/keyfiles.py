"""Key files: X25519 keys stored as one line of base64, secrets readable by their owner only.

``seabridge keys`` writes them; the gateway and the shore read them. A secret key file is created with
mode 0600 and refused if anyone else can read it.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from nacl.public import PrivateKey, PublicKey


class KeyFileError(ValueError):
    pass


def encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFileError("key is not valid base64") from exc
    if len(raw) != 32:
        raise KeyFileError(f"key must be 32 bytes, got {len(raw)}")
    return raw


def write_keypair(secret_path: Path, public_path: Path | None = None) -> PrivateKey:
    """Create a new key pair; refuse to overwrite an existing secret."""
    secret_path.parent.mkdir(parents=True, exist_ok=True)
    key = PrivateKey.generate()
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(encode_key(bytes(key)) + "\n")
    pub = public_path or secret_path.with_suffix(".pub")
    pub.write_text(encode_key(bytes(key.public_key)) + "\n")
    return key


def read_secret(path: Path) -> PrivateKey:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} is readable by others; chmod 600 it")
    return PrivateKey(decode_key(path.read_text()))


def read_public(value: str | Path) -> PublicKey:
    """A public key from a file path or given inline as base64."""
    text = str(value)
    path = Path(text)
    if len(text) < 200 and path.exists():
        text = path.read_text()
    return PublicKey(decode_key(text))
