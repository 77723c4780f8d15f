"""Typed errors of the over-the-air format, split by whose fault they are (as h11 does).

``RemoteWireError`` means the bytes that arrived are wrong (garbage, truncation, forgery, replay):
the receiver rejects them, counts the reason and carries on. ``LocalWireError`` means our own code
asked for something the format cannot do (a record larger than the format allows, a frame limit
smaller than the overhead): a bug to fix, not input to reject.
"""

from __future__ import annotations


class WireError(Exception):
    """Base of every error raised by ``wire``."""

    reason = "wire-error"


class LocalWireError(WireError):
    """We misused the format (caller bug)."""

    reason = "local-error"


class RemoteWireError(WireError, ValueError):
    """The peer (or the path) sent bytes that are not a valid frame, record or item."""

    reason = "malformed"


class TruncatedError(RemoteWireError):
    reason = "truncated"


class MalformedError(RemoteWireError):
    reason = "malformed"


class UnsupportedVersionError(RemoteWireError):
    reason = "unsupported-version"


class AuthenticationError(RemoteWireError):
    """The frame did not verify under the expected key: forged, corrupted or from another vessel."""

    reason = "bad-mac"


class ReplayError(RemoteWireError):
    """The frame counter was seen before or is older than the replay window."""

    reason = "replay"


class UnknownCodecError(RemoteWireError):
    reason = "unknown-codec"


class OversizeError(RemoteWireError):
    """A length field or a decompressed size is above the hard limit."""

    reason = "oversize"
