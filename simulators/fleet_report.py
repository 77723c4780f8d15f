"""The fleet simulation's report: numbers as JSON, and plots as self-contained SVG files.

Plain SVG written here (no plotting library): a latency distribution per class (empirical CDF on a log
time axis) and the bytes each vessel spent per day against its budget.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLOURS = ["#c0392b", "#8e44ad", "#2471a3", "#138d75", "#b9770e", "#566573"]


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
        f'<title>{title}</title><rect width="100%" height="100%" fill="white"/>' + "".join(body) + "</svg>\n"
    )


def latency_cdf_svg(latencies: dict[str, list[float]], title: str = "Delivery latency by class") -> str:
    """Empirical CDF of delivery latency (seconds, log axis) for each class."""
    w, h, left, right, top, bottom = 720, 420, 60, 150, 30, 50
    pw, ph = w - left - right, h - top - bottom
    lo, hi = 1.0, 30 * 86400.0

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return left + pw * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    def y(p: float) -> float:
        return top + ph * (1 - p)

    body = [
        f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for label, secs in (
        ("1 s", 1),
        ("1 min", 60),
        ("10 min", 600),
        ("1 h", 3600),
        ("6 h", 21600),
        ("1 day", 86400),
        ("7 days", 604800),
    ):
        body.append(f'<line x1="{x(secs):.1f}" y1="{top}" x2="{x(secs):.1f}" y2="{top + ph}" stroke="#eee"/>')
        body.append(f'<text x="{x(secs):.1f}" y="{top + ph + 16}" text-anchor="middle">{label}</text>')
    for p in (0.0, 0.5, 0.9, 1.0):
        body.append(f'<text x="{left - 6}" y="{y(p) + 4:.1f}" text-anchor="end">{int(p * 100)} %</text>')
    body.append(
        f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">latency (accepted on board → archived ashore)</text>'
    )
    for i, (name, values) in enumerate(sorted(latencies.items())):
        if not values:
            continue
        colour = COLOURS[i % len(COLOURS)]
        ordered = sorted(values)
        n = len(ordered)
        step = max(1, n // 300)
        points = [
            f"{x(v):.1f},{y((j + 1) / n):.1f}" for j, v in enumerate(ordered) if j % step == 0 or j == n - 1
        ]
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>')
        ly = top + 16 + 18 * i
        body.append(
            f'<line x1="{w - right + 10}" y1="{ly}" x2="{w - right + 30}" y2="{ly}" stroke="{colour}" stroke-width="3"/>'
        )
        body.append(f'<text x="{w - right + 36}" y="{ly + 4}">{name} (n={n})</text>')
    return _svg(w, h, body, title)


def bytes_per_day_svg(
    per_vessel_day: list[float], budget: float | None, title: str = "Bytes on the air per vessel-day"
) -> str:
    """Histogram of bytes per vessel-day, with the daily budget marked."""
    w, h, left, right, top, bottom = 720, 360, 60, 20, 30, 50
    pw, ph = w - left - right, h - top - bottom
    body = [
        f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    if per_vessel_day:
        top_value = max(max(per_vessel_day), budget or 0) * 1.05 or 1.0
        bins = 30
        counts = [0] * bins
        for v in per_vessel_day:
            counts[min(bins - 1, int(v / top_value * bins))] += 1
        peak = max(counts) or 1
        bw = pw / bins
        for i, c in enumerate(counts):
            bh = ph * c / peak
            body.append(
                f'<rect x="{left + i * bw + 1:.1f}" y="{top + ph - bh:.1f}" width="{bw - 2:.1f}" '
                f'height="{bh:.1f}" fill="#2471a3"/>'
            )
        for frac in (0, 0.5, 1):
            body.append(
                f'<text x="{left + pw * frac:.1f}" y="{top + ph + 16}" text-anchor="middle">'
                f"{top_value * frac:,.0f} B</text>"
            )
        body.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{peak}</text>')
        if budget:
            bx = left + pw * budget / top_value
            body.append(
                f'<line x1="{bx:.1f}" y1="{top}" x2="{bx:.1f}" y2="{top + ph}" stroke="#c0392b" '
                f'stroke-dasharray="6 4" stroke-width="2"/>'
            )
            body.append(f'<text x="{bx + 4:.1f}" y="{top + 14}" fill="#c0392b">daily budget</text>')
    body.append(
        f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">bytes per vessel-day (MO + MT)</text>'
    )
    return _svg(w, h, body, title)


def write_report(
    folder: Path,
    report: dict[str, Any],
    latencies: dict[str, list[float]],
    per_vessel_day: list[float],
    daily_budget: float | None,
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.json", folder / "latency.svg", folder / "bytes-per-vessel-day.svg"]
    written[0].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    written[1].write_text(latency_cdf_svg(latencies))
    written[2].write_text(bytes_per_day_svg(per_vessel_day, daily_budget))
    return written
