"""What a lone crew message costs on the air, per language: wire format v1 against v2, in one run.

Every figure comes from the shared estimator (``common.estimate.estimate``, the function the captive
page, the dashboard and ``seabridge estimate`` call) on a RockBLOCK 9603 (one credit per 50 bytes or
part). Messages: single sentences the text models never saw (held-out templates), then the held-out
half of the corpus. Columns: mean codec output (codec byte included), mean frame bytes and credits
for v1 and v2, v2 overhead beyond the codec output (mean and worst), and the v2/v1 ratio of credits.
"""

from __future__ import annotations

from statistics import mean

from bench._corpus import LANGS, load, unseen
from common.estimate import estimate

PROFILE = "iridium-9603"  # RockBLOCK 9603: billed per credit of 50 bytes


def _row(lang: str, texts: list[str]) -> dict[str, float]:
    v1 = [estimate(t, lang, PROFILE, version=1) for t in texts]
    v2 = [estimate(t, lang, PROFILE, version=2) for t in texts]
    return {
        "n": len(texts),
        "coded": mean(e["coded_bytes"] for e in v2),
        "v1_bytes": mean(e["frame_bytes"] for e in v1),
        "v1_credits": mean(e["credits"] for e in v1),
        "v2_bytes": mean(e["frame_bytes"] for e in v2),
        "v2_credits": mean(e["credits"] for e in v2),
        "v2_overhead": mean(e["overhead"] for e in v2 if e["frames"] == 1),
        "v2_overhead_max": max(e["overhead"] for e in v2 if e["frames"] == 1),
    }


def _table(title: str, texts: dict[str, list[str]]) -> None:
    print(title)
    print(
        f"{'lang':<5}{'msgs':>5}{'codec B':>9}{'v1 B':>8}{'v1 cr':>7}{'v2 B':>8}{'v2 cr':>7}"
        f"{'v2 ovh':>8}{'max':>5}{'cr v2/v1':>10}"
    )
    rows = {lang: _row(lang, texts[lang]) for lang in LANGS}
    everything = [t for lang in LANGS for t in texts[lang]]
    for lang, r in rows.items():
        print(
            f"{lang:<5}{r['n']:>5}{r['coded']:>9.1f}{r['v1_bytes']:>8.1f}{r['v1_credits']:>7.2f}"
            f"{r['v2_bytes']:>8.1f}{r['v2_credits']:>7.2f}{r['v2_overhead']:>8.1f}{r['v2_overhead_max']:>5}"
            f"{r['v2_credits'] / r['v1_credits']:>10.2f}"
        )
    n = len(everything)
    v1 = sum(r["v1_credits"] * r["n"] for r in rows.values()) / n
    v2 = sum(r["v2_credits"] * r["n"] for r in rows.values()) / n
    print(f"{'all':<5}{n:>5}{'':>9}{'':>8}{v1:>7.2f}{'':>8}{v2:>7.2f}{'':>8}{'':>5}{v2 / v1:>10.2f}")


def main() -> None:
    _table(
        "never-seen sentences (held-out templates); means per message", {lang: unseen(lang) for lang in LANGS}
    )
    print()
    _table("held-out half of corpus/; means per message", {lang: load(lang, "test") for lang in LANGS})


if __name__ == "__main__":
    main()
