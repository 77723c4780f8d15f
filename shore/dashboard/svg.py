"""Inline SVG plots and the offline map for the dashboard.

It owns turning numbers into small, self-contained SVG (bar charts with a budget line, a latency
histogram, per-class counts) and drawing vessel positions and tracks on an equirectangular map with a
lat/lon grid and the coastlines shipped in ``static/coast.geojson``. No tiles, no scripts, no network.
Every label is escaped; it reads no clock and touches no database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from html import escape
from importlib import resources

# Default map window: the Andaman Sea and the Gulf of Thailand (lon_min, lat_min, lon_max, lat_max).
DEFAULT_BOUNDS = (90.0, 0.0, 110.0, 20.0)
LATENCY_BUCKETS = [
    (60, "<1 min"),
    (300, "1–5 min"),
    (900, "5–15 min"),
    (3600, "15–60 min"),
    (6 * 3600, "1–6 h"),
]
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def _fmt(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def bar_chart(
    bars: list[tuple[str, float]],
    title: str,
    unit: str,
    budget: float | None = None,
    width: int = 420,
    height: int = 180,
    colour: str = "#2b6cb0",
) -> str:
    left, right, top, bottom = 44, 8, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for _l, v in bars] + [budget or 0, 1.0])
    step = plot_w / max(1, len(bars))
    parts = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="4" y="14" class="t">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#889"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="a">{_fmt(peak)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="a">0 {escape(unit)}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        h = plot_h * value / peak
        x = left + i * step + step * 0.15
        over = budget is not None and value > budget
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{"#c53030" if over else colour}"><title>{escape(label)}: {value:.0f} {escape(unit)}</title></rect>'
        )
        if len(bars) <= 8 or i % max(1, len(bars) // 7) == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{height - bottom + 14}" text-anchor="middle" class="a">'
                f"{escape(label)}</text>"
            )
    if budget is not None and budget > 0:
        y = top + plot_h - plot_h * budget / peak
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#c53030" '
            f'stroke-dasharray="5 3"/><text x="{width - right}" y="{y - 3:.1f}" text-anchor="end" '
            f'class="a" fill="#c53030">budget {_fmt(budget)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bytes_per_day_chart(days: list[tuple[float, int]], budget: float | None) -> str:
    bars = [(datetime.fromtimestamp(d, UTC).strftime("%d %b"), float(n)) for d, n in days]
    return bar_chart(bars, "Bytes on the air per day (vessel to shore)", "B", budget)


def latency_chart(latencies: list[float], title: str) -> str:
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    for value in latencies:
        for i, (limit, _label) in enumerate(LATENCY_BUCKETS):
            if value < limit:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
    labels = [label for _l, label in LATENCY_BUCKETS] + [">6 h"]
    return bar_chart(list(zip(labels, map(float, counts), strict=True)), title, "msgs", colour="#2f855a")


def class_chart(counts: dict[str, int]) -> str:
    return bar_chart(
        [(name, float(n)) for name, n in counts.items()],
        "Messages per class, last 7 days",
        "",
        colour="#6b46c1",
    )


@lru_cache(maxsize=1)
def coastlines() -> list[list[tuple[float, float]]]:
    text = (resources.files("shore") / "static" / "coast.geojson").read_text(encoding="utf-8")
    lines = []
    for feature in json.loads(text)["features"]:
        geometry = feature["geometry"]
        if geometry["type"] == "LineString":
            lines.append([(float(x), float(y)) for x, y in geometry["coordinates"]])
    return lines


def map_bounds(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """DEFAULT_BOUNDS, widened to hold every (lat, lon) point with a margin."""
    lon0, lat0, lon1, lat1 = DEFAULT_BOUNDS
    for lat, lon in points:
        lon0, lon1 = min(lon0, lon - 1), max(lon1, lon + 1)
        lat0, lat1 = min(lat0, lat - 1), max(lat1, lat + 1)
    return max(-180, lon0), max(-85, lat0), min(180, lon1), min(85, lat1)


def fleet_map(
    vessels: list[dict[str, object]],
    tracks: dict[str, list[tuple[float, float, float]]],
    network: dict[str, tuple[float, float, float, float]] | None = None,
    width: int = 520,
    height: int = 440,
) -> str:
    """Vessels (dicts with slug, name, silent, alerts) at their last known position, with tracks.
    A network position (time, lat, lon, accuracy in metres) newer than a vessel's last track point
    places its pin instead, inside a circle of that accuracy."""
    network = network or {}
    every = [(lat, lon) for pts in tracks.values() for _t, lat, lon in pts]
    every += [(lat, lon) for _t, lat, lon, _a in network.values()]
    lon0, lat0, lon1, lat1 = map_bounds(every)
    sx = width / (lon1 - lon0)
    sy = height / (lat1 - lat0)
    scale = min(sx, sy)

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return (lon - lon0) * scale, height - (lat - lat0) * scale

    parts = [
        f'<svg class="map" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="Vessel positions" xmlns="http://www.w3.org/2000/svg">',
        f'<rect width="{width}" height="{height}" fill="#e6f0f7"/>',
    ]
    parts += _graticule(xy, lon0, lat0, lon1, lat1, width, height)
    for line in coastlines():
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(lat, lon) for lon, lat in line))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#5a6b52" stroke-width="1.3"/>')
    for i, v in enumerate(vessels):
        pts = tracks.get(str(v["slug"]), [])
        estimate = network.get(str(v["slug"]))
        if estimate is not None and (not pts or estimate[0] > pts[-1][0]):
            at, lat, lon, accuracy = estimate
            x, y = xy(lat, lon)
            radius = max(3.0, accuracy / 111_320 * scale)  # metres to degrees of latitude to pixels
            parts.append(
                f'<circle class="accuracy" cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="#3182ce" '
                f'fill-opacity="0.15" stroke="#3182ce" stroke-width="0.8"><title>satellite network estimate, '
                f"within {accuracy / 1000:.1f} km</title></circle>"
            )
            pts = [*pts, (at, lat, lon)]
        if not pts:
            continue
        colour = PALETTE[i % len(PALETTE)]
        if len(pts) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(lat, lon) for _t, lat, lon in pts[-200:]))
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5" '
                f'stroke-dasharray="3 2"/>'
            )
        _t, lat, lon = pts[-1]
        x, y = xy(lat, lon)
        sos = any(isinstance(a, dict) and a.get("kind") == "sos" for a in v.get("alerts", []))  # type: ignore[union-attr]
        fill = "#e53e3e" if sos or v.get("silent") else colour
        parts.append(
            f'<g class="pin" data-vessel="{escape(str(v["slug"]))}"><circle cx="{x:.1f}" cy="{y:.1f}" '
            f'r="{8 if sos else 5}" fill="{fill}" stroke="#fff" stroke-width="1.5">'
            f"<title>{escape(str(v['name']))} {lat:.3f}, {lon:.3f}</title></circle>"
            f'<text x="{x + 8:.1f}" y="{y + 4:.1f}" class="l">{escape(str(v["name"]))}</text></g>'
        )
    parts.append(
        f'<text x="{width - 4}" y="12" text-anchor="end" class="a">approximate coastlines, not for navigation</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _graticule(
    xy: Callable[[float, float], tuple[float, float]],
    lon0: float,
    lat0: float,
    lon1: float,
    lat1: float,
    width: int,
    height: int,
) -> list[str]:
    """Meridians and parallels every 5° (10° on a wide map), labelled where there is room."""
    parts: list[str] = []
    step = 5 if lon1 - lon0 <= 40 else 10
    for lon in range(int(lon0 // step * step), int(lon1) + 1, step):
        x, _ = xy(lat0, lon)
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" stroke="#b8cfe0" stroke-width="0.6"/>'
            + (
                f'<text x="{x + 2:.1f}" y="{height - 3}" class="a">{abs(lon)}°{"E" if lon >= 0 else "W"}</text>'
                if x > 30
                else ""
            )
        )
    for lat in range(int(lat0 // step * step), int(lat1) + 1, step):
        _, y = xy(lat, lon0)
        parts.append(
            f'<line x1="0" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="#b8cfe0" stroke-width="0.6"/>'
            + (
                f'<text x="2" y="{y - 2:.1f}" class="a">{abs(lat)}°{"N" if lat >= 0 else "S"}</text>'
                if y < height - 14
                else ""
            )
        )
    return parts
