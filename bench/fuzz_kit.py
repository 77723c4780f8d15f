"""What every fuzz target is made of: the ``Target`` record and the two mutators.

``mutate_bytes`` damages a byte string the way links and attackers do (bit flips, interesting
values, insertions, deletions, duplicated and spliced ranges, truncation). ``mutate_tree`` damages a
decoded CBOR value (maps, lists, ints, text, bytes, floats) node by node, so a schema parser sees
every wrong type, extreme number and missing or extra key. Both draw only from the ``random.Random``
they are given. Nothing here knows a format.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    generate: Callable[[random.Random], Any]
    check: Callable[[Any], str]  # asserts the parser's promise; returns an outcome label


_INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF, 0x0D, 0x0A, 0x20, 0x30, 0x39)
_INTERESTING_INTS = (0, 1, -1, 2, 23, 24, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32, 2**63, -(2**63), 2**64)
_INTERESTING_TEXT = ("", "²", "⓽", "١", "\x00", "A" * 300, "ÿ", "\ud7ff", "*", "OTB", "hotline")


def mutate_bytes(rng: random.Random, data: bytes, others: Sequence[bytes]) -> bytes:
    """1 to 4 random byte-level mutations of ``data`` (``others`` feed the splices)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[min(pos, len(out) - 1)] = rng.choice(_INTERESTING_BYTES)
        elif op == 2:
            out[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and out:
            del out[pos : pos + rng.randint(1, 16)]
        elif op == 4 and out:
            start = rng.randrange(len(out))
            out[pos:pos] = out[start : start + rng.randint(1, 16)]
        elif op == 5 and others:
            other = rng.choice(others)
            start = rng.randrange(len(other) + 1)
            out[pos:] = other[start:]
        elif op == 6:
            del out[pos:]
        elif op == 7 and len(out) >= 2:  # a 16-bit length field set to something interesting
            value = rng.choice((0, 1, 0xFF, 0x100, 0xFFFF, len(out), len(out) + 1, max(0, len(out) - 1)))
            p = min(pos, len(out) - 2)
            out[p : p + 2] = (value & 0xFFFF).to_bytes(2, "big")
        else:
            out += rng.randbytes(rng.randint(1, 4))
    return bytes(out)


def _random_leaf(rng: random.Random) -> Any:
    roll = rng.randrange(9)
    if roll == 0:
        return rng.choice(_INTERESTING_INTS)
    if roll == 1:
        return rng.randint(-(2**20), 2**20)
    if roll == 2:
        return rng.choice(_INTERESTING_TEXT)
    if roll == 3:
        return rng.randbytes(rng.choice((0, 1, 16, 31, 32, 33, 200)))
    if roll == 4:
        return rng.choice((0.0, -0.0, 1.5, float("nan"), float("inf"), -1e308, 1e-320))
    if roll == 5:
        return rng.choice((None, True, False))
    if roll == 6:
        return []
    if roll == 7:
        return {}
    return [rng.randint(0, 5)]


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _nodes(v, (*path, i))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _mutate_node(rng: random.Random, node: Any) -> Any:
    roll = rng.randrange(7)
    if roll == 0:
        return _random_leaf(rng)
    if roll == 1 and isinstance(node, int) and not isinstance(node, bool):
        return node + rng.choice((-1, 1, -(2**32), 2**32, -node - 1))
    if roll == 2 and isinstance(node, dict):
        node.pop(rng.choice(list(node)), None) if node else None
        return node
    if roll == 3 and isinstance(node, dict):
        node[rng.choice((rng.randint(0, 20), -1, 2**40, "0", b"\x00"))] = _random_leaf(rng)
        return node
    if roll == 4 and isinstance(node, list):
        if node and rng.random() < 0.5:
            del node[rng.randrange(len(node))]
        else:
            node.insert(rng.randint(0, len(node)), _random_leaf(rng))
        return node
    if roll == 5 and isinstance(node, str | bytes):
        return node[: rng.randrange(len(node) + 1)] + (rng.choice(_INTERESTING_TEXT) if isinstance(node, str) else rng.randbytes(2))
    return [node] if rng.random() < 0.5 else {0: node}


def mutate_tree(rng: random.Random, value: Any) -> Any:
    """A deep copy of ``value`` with 1 to 3 nodes damaged."""
    value = copy.deepcopy(value)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_nodes(value))
        if not path:
            value = _mutate_node(rng, value)
            continue
        parent = _get(value, path[:-1])
        parent[path[-1]] = _mutate_node(rng, parent[path[-1]])
    return value
