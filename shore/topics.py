"""The shore's MQTT topic names: the one root every topic hangs under and how a fleet or vessel name
becomes a topic level.

Everything that builds or parses a topic imports it from here. It must not import the relay, the
archive or the broker client: a topic name is a contract, not a behaviour.
"""

from __future__ import annotations

import functools
import re
from typing import Protocol

TOPIC_ROOT = "seabridge/v1"
FRAMES_TOPIC = f"{TOPIC_ROOT}/_relay/frames"  # encoded MT frames, one subtopic per network
_SLUG = re.compile(r"[^a-z0-9-]+")


class Named(Protocol):
    @property
    def fleet(self) -> str: ...

    @property
    def name(self) -> str: ...


@functools.lru_cache(maxsize=4096)  # names repeat: every event of a vessel names it
def slug(name: str) -> str:
    """A fleet or vessel name as one topic level: lower case, ``a-z0-9-`` only."""
    return _SLUG.sub("-", name.lower()).strip("-") or "unnamed"


def vessel_topic(vessel: Named, *parts: str) -> str:
    """``seabridge/v1/<fleet>/<vessel>/<parts...>``."""
    return "/".join((TOPIC_ROOT, slug(vessel.fleet), slug(vessel.name), *parts))
