"""How long to wait after a failed session, per the modem's documented retry schedule and status.

This module owns one decision: given the profile's ``RetryPolicy``, how many sessions have failed in a
row and the MO status the last one reported, the wait before the next attempt. Iridium documents
different handling per ``+SBDIX`` MO status (reference §1.5, §1.8):

* fatal statuses (12 too many segments, 14 invalid segment size, 16 ISU locked) are not retried on the
  schedule: the same attempt would fail the same way, so the gateway holds ``fatal_hold_s``;
* statuses with a documented wait (36: three minutes since the last registration; 37 service
  temporarily disabled, 38 traffic management period, 33 antenna fault) wait exactly that long;
* everything else follows ``schedule_s``: the first ``jitter_steps`` steps are a random time up to the
  step (RockBLOCK's adaptive retry: 0-5 s twice, 0-30 s twice), later steps are waited in full
  (its 5-minute back-off), the last value repeating.

It must not sleep, read a clock or take randomness: the caller passes its ``random.Random``.
"""

from __future__ import annotations

import random

from firmware_profiles import RetryPolicy


def retry_delay(policy: RetryPolicy, failures: int, mo_status: int | None, rng: random.Random) -> float:
    """Seconds to wait after the ``failures``-th failed session in a row (1 = the first)."""
    if mo_status is not None and mo_status in policy.fatal_mo_status:
        return policy.fatal_hold_s
    if mo_status is not None and mo_status in policy.status_wait_s:
        return policy.status_wait_s[mo_status]
    schedule = policy.schedule_s
    step = min(max(failures, 1) - 1, len(schedule) - 1)
    base = schedule[step]
    jitter_steps = len(schedule) if policy.jitter_steps is None else policy.jitter_steps
    if policy.jitter and step < jitter_steps:
        return rng.uniform(0, base)
    return base


def is_fatal(policy: RetryPolicy, mo_status: int | None) -> bool:
    """True for an MO status the documentation says not to retry."""
    return mo_status is not None and mo_status in policy.fatal_mo_status
