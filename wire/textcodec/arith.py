"""Binary arithmetic coder (Witten, Neal and Cleary, 32-bit integer precision).

Owns the bit-exact mapping between a sequence of (cumulative low, cumulative high, total) intervals and
bytes. Must not know anything about models or text: callers supply the intervals. Pure and
deterministic; both ends of the link must produce identical arithmetic, so only integer operations are
used. Totals must stay below ``MAX_TOTAL``.
"""

from __future__ import annotations

_BITS = 32
_TOP = (1 << _BITS) - 1
_HALF = 1 << (_BITS - 1)
_QUARTER = 1 << (_BITS - 2)
_THREE_QUARTERS = _HALF + _QUARTER

MAX_TOTAL = 1 << 16


class ArithmeticEncoder:
    """Collects intervals and turns them into bytes with :meth:`finish`."""

    def __init__(self) -> None:
        self._low = 0
        self._high = _TOP
        self._pending = 0
        self._bits: list[int] = []

    def _out(self, bit: int) -> None:
        bits = self._bits
        bits.append(bit)
        if self._pending:
            bits.extend([bit ^ 1] * self._pending)
            self._pending = 0

    def encode(self, cum_low: int, cum_high: int, total: int) -> None:
        span = self._high - self._low + 1
        self._high = self._low + span * cum_high // total - 1
        self._low = self._low + span * cum_low // total
        while True:
            if self._high < _HALF:
                self._out(0)
            elif self._low >= _HALF:
                self._out(1)
                self._low -= _HALF
                self._high -= _HALF
            elif self._low >= _QUARTER and self._high < _THREE_QUARTERS:
                self._pending += 1
                self._low -= _QUARTER
                self._high -= _QUARTER
            else:
                break
            self._low <<= 1
            self._high = (self._high << 1) | 1

    def encode_bits(self, value: int, nbits: int) -> None:
        """``nbits`` raw bits of ``value``, most significant first, in chunks of at most 16."""
        while nbits > 0:
            take = min(16, nbits)
            nbits -= take
            chunk = (value >> nbits) & ((1 << take) - 1)
            self.encode(chunk, chunk + 1, 1 << take)

    def encode_uniform(self, value: int, count: int) -> None:
        """``value`` in ``range(count)`` with equal probability (any count below 2**32)."""
        if count <= MAX_TOTAL:
            self.encode(value, value + 1, count)
            return
        self.encode_bits(value, (count - 1).bit_length())

    def finish(self) -> bytes:
        self._pending += 1
        self._out(0 if self._low < _QUARTER else 1)
        bits = self._bits
        out = bytearray((len(bits) + 7) // 8)
        for i, bit in enumerate(bits):
            if bit:
                out[i >> 3] |= 0x80 >> (i & 7)
        # The decoder reads zeros past the end, so trailing zero bytes carry nothing.
        return bytes(out).rstrip(b"\0")


class ArithmeticDecoder:
    """Reads intervals back; reading past the end of the data yields zero bits."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._nbits = len(data) * 8
        self._pos = 0
        self._low = 0
        self._high = _TOP
        value = 0
        for _ in range(_BITS):
            value = (value << 1) | self._bit()
        self._value = value

    def _bit(self) -> int:
        pos = self._pos
        self._pos = pos + 1
        if pos >= self._nbits:
            return 0
        return (self._data[pos >> 3] >> (7 - (pos & 7))) & 1

    @property
    def overrun_bits(self) -> int:
        """How many bits were read beyond the data (bounded by the coder's precision when valid)."""
        return max(0, self._pos - self._nbits)

    def target(self, total: int) -> int:
        span = self._high - self._low + 1
        return ((self._value - self._low + 1) * total - 1) // span

    def consume(self, cum_low: int, cum_high: int, total: int) -> None:
        span = self._high - self._low + 1
        self._high = self._low + span * cum_high // total - 1
        self._low = self._low + span * cum_low // total
        while True:
            if self._high < _HALF:
                pass
            elif self._low >= _HALF:
                self._low -= _HALF
                self._high -= _HALF
                self._value -= _HALF
            elif self._low >= _QUARTER and self._high < _THREE_QUARTERS:
                self._low -= _QUARTER
                self._high -= _QUARTER
                self._value -= _QUARTER
            else:
                break
            self._low <<= 1
            self._high = (self._high << 1) | 1
            self._value = (self._value << 1) | self._bit()

    def decode_bits(self, nbits: int) -> int:
        value = 0
        while nbits > 0:
            take = min(16, nbits)
            nbits -= take
            chunk = self.target(1 << take)
            self.consume(chunk, chunk + 1, 1 << take)
            value = (value << take) | chunk
        return value

    def decode_uniform(self, count: int) -> int:
        if count <= MAX_TOTAL:
            value = self.target(count)
            if value >= count:  # only possible with corrupt input
                value = count - 1
            self.consume(value, value + 1, count)
            return value
        return self.decode_bits((count - 1).bit_length())
