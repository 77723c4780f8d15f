"""The vessel's airtime budget: what a session costs, what has been spent, and what that allows.

It owns the arithmetic of money on the link: the cost of a frame or a mailbox check under the modem
profile's billing model (``Billing.units``), the budget per UTC day and per UTC month in billed bytes,
billing units or currency, the fraction used, and the 80 % / 100 % alert levels. It does not decide
when to open a session (``scheduler``) and does no I/O: callers pass spend figures and ``now``.

SOS is never blocked by the budget; that exemption lives in the packer and scheduler, which ask
``BudgetState.exhausted`` and then let distress traffic through anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from firmware_profiles import Billing

from .store import Spend

BUDGET_UNITS = ("bytes", "units", "currency")
ALERT_LEVELS = (0.8, 1.0)


class BudgetConfigError(ValueError):
    """The budget section of the configuration is inconsistent."""


def periods(now: float) -> tuple[str, str]:
    """The UTC day and month ``now`` falls in, as spend-table keys."""
    t = time.gmtime(now)
    return (f"d:{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", f"m:{t.tm_year:04d}-{t.tm_mon:02d}")


@dataclass(frozen=True)
class Cost:
    bytes: int  # bytes on the air
    units: int  # billing units
    billed_bytes: int  # units x unit size: what a byte budget counts
    money: float  # units x price per unit, in the profile's currency


@dataclass(frozen=True)
class BudgetState:
    day_used: float  # in the configured budget unit
    month_used: float
    day_limit: float  # 0 = no limit
    month_limit: float
    unit: str

    @property
    def day_fraction(self) -> float:
        return self.day_used / self.day_limit if self.day_limit > 0 else 0.0

    @property
    def month_fraction(self) -> float:
        return self.month_used / self.month_limit if self.month_limit > 0 else 0.0

    @property
    def fraction(self) -> float:
        """The tighter of the two budgets, 0.0 when none is configured."""
        return max(self.day_fraction, self.month_fraction)

    @property
    def exhausted(self) -> bool:
        return self.fraction >= 1.0

    def describe(self) -> str:
        return f"budget {self.fraction * 100:.0f} %"


class Budget:
    """Budget policy for one vessel under one billing model."""

    def __init__(self, billing: Billing, unit: str, day_limit: float, month_limit: float) -> None:
        if unit not in BUDGET_UNITS:
            raise BudgetConfigError(f"budget unit must be one of {', '.join(BUDGET_UNITS)}, not {unit!r}")
        if day_limit < 0 or month_limit < 0:
            raise BudgetConfigError("budget limits must not be negative")
        self.billing = billing
        self.unit = unit
        self.day_limit = day_limit
        self.month_limit = month_limit

    def cost(self, nbytes: int) -> Cost:
        """Cost of one message of ``nbytes`` (0 = a mailbox check with nothing to send)."""
        units = self.billing.units(nbytes)
        return Cost(nbytes, units, units * self.billing.unit_bytes, units * self.billing.cost_per_unit)

    def amount(self, spend: Spend) -> float:
        """``spend`` expressed in the budget's unit."""
        if self.unit == "bytes":
            return float(spend.units * self.billing.unit_bytes)
        if self.unit == "units":
            return float(spend.units)
        return spend.units * self.billing.cost_per_unit

    def cost_amount(self, cost: Cost) -> float:
        return self.amount(Spend(cost.bytes, cost.units, 1))

    def state(self, day: Spend, month: Spend) -> BudgetState:
        return BudgetState(self.amount(day), self.amount(month), self.day_limit, self.month_limit, self.unit)

    def affordable(self, state: BudgetState, cost: Cost) -> bool:
        """Whether a session of ``cost`` stays inside both budgets."""
        extra = self.cost_amount(cost)
        return not (
            (state.day_limit > 0 and state.day_used + extra > state.day_limit)
            or (state.month_limit > 0 and state.month_used + extra > state.month_limit)
        )

    def affordable_bytes(self, state: BudgetState) -> int | None:
        """The largest message that still fits both budgets (None = no budget configured)."""
        lefts = [
            limit - used
            for limit, used in ((state.day_limit, state.day_used), (state.month_limit, state.month_used))
            if limit > 0
        ]
        if not lefts:
            return None
        per_unit = self.cost_amount(Cost(0, 1, self.billing.unit_bytes, self.billing.cost_per_unit))
        units = int(max(0.0, min(lefts)) / per_unit + 1e-9) if per_unit > 0 else 0
        nbytes = units * self.billing.unit_bytes
        return nbytes if nbytes >= self.billing.minimum_bytes else 0

    @staticmethod
    def alerts_crossed(state: BudgetState) -> list[tuple[str, float]]:
        """(``day``/``month``, level) pairs at or past an alert level, for once-per-period alerts."""
        out = []
        for name, fraction in (("day", state.day_fraction), ("month", state.month_fraction)):
            out.extend((name, level) for level in ALERT_LEVELS if fraction >= level)
        return out
