"""Incremental DirectIP framing: cut a received byte stream into whole DirectIP messages.

It owns only where one message ends and the next begins (the preamble's revision and overall length,
checked as they arrive); the layout of a message is ``shore.directip``'s. Sans-I/O: the asyncio
adapters in ``shore.directip_server`` and the emulated network feed it the bytes they receive.
"""

from __future__ import annotations

from typing import NoReturn

from .directip import (
    MAX_MESSAGE_LENGTH,
    PREAMBLE,
    PROTOCOL_REVISION,
    U16_MAX,
    BadLength,
    BadRevision,
    DirectIpError,
    TruncatedMessage,
)


class MessageReader:
    """Sans-I/O framer: feed received bytes, take out whole messages.

    A message is complete once the 3-byte preamble has arrived and then ``overall length`` more bytes.
    The revision byte and the overall length are checked as soon as they arrive, so a peer sending
    garbage or announcing more than ``max_length`` bytes is rejected without buffering it. After an
    error the reader stays failed and raises the same error again.

        reader = MessageReader()
        reader.feed(chunk)
        message = reader.next_message()  # bytes of one whole message, or None if more are needed
        ...
        reader.end_of_stream()           # raises TruncatedMessage if a partial message is buffered
    """

    def __init__(self, max_length: int = MAX_MESSAGE_LENGTH) -> None:
        if not 0 < max_length <= U16_MAX:
            raise ValueError(f"max_length must be 1..{U16_MAX}")
        self.max_length = max_length
        self._buffer = bytearray()
        self._error: DirectIpError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a message."""
        return len(self._buffer)

    @property
    def missing(self) -> int:
        """Bytes still needed to complete the preamble or, once it is known, the current message."""
        if len(self._buffer) < PREAMBLE.size:
            return PREAMBLE.size - len(self._buffer)
        _revision, overall = PREAMBLE.unpack_from(self._buffer)
        return max(0, PREAMBLE.size + overall - len(self._buffer))

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes; raises at once if they make the stream invalid (and on a failed reader)."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        self._validate()

    def next_message(self) -> bytes | None:
        """The next whole message, or None if more bytes are needed."""
        if self._error is not None:
            raise self._error
        if self._validate() is None:
            return None
        _revision, overall = PREAMBLE.unpack_from(self._buffer)
        total = PREAMBLE.size + overall
        if len(self._buffer) < total:
            return None
        message = bytes(self._buffer[:total])
        del self._buffer[:total]
        return message

    def _validate(self) -> int | None:
        """Check the buffered preamble; return the overall length once it is known."""
        if not self._buffer:
            return None
        if self._buffer[0] != PROTOCOL_REVISION:
            revision = self._buffer[0]
            self._fail(BadRevision(f"protocol revision {revision:#04x}, expected {PROTOCOL_REVISION:#04x}"))
        if len(self._buffer) < PREAMBLE.size:
            return None
        _revision, overall = PREAMBLE.unpack_from(self._buffer)
        if overall > self.max_length:
            self._fail(BadLength(f"overall length {overall} exceeds the limit of {self.max_length}"))
        return int(overall)

    def end_of_stream(self) -> None:
        """The peer closed: raise :class:`TruncatedMessage` if a partial message is left over."""
        if self._error is not None:
            raise self._error
        if self._buffer:
            raise TruncatedMessage(
                f"connection closed with {len(self._buffer)} bytes of an incomplete message"
            )

    def _fail(self, error: DirectIpError) -> NoReturn:
        self._error = error
        raise error
