"""Generate the crew-message corpus: ``python corpus/generate.py`` rewrites ``corpus/<lang>.{train,test}.txt``.

One message per line, in Burmese (my), Khmer (km), Thai (th) and English (en), about family life and
grievances at sea. The output is deterministic (fixed seed), so the committed files can be checked
against a fresh run. The two halves have the same size; every fourth sentence template is held out
and appears only in the test half.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from phrases import CLOSINGS, FAMILY, GREETINGS, GRIEVANCE, NATIVE_DIGITS, SLOTS

MESSAGES_PER_HALF = 400
SEED = 20260801
_SLOT = re.compile(r"\{(\w+)\}")


def _number(rng: random.Random, slot: str, lang: str) -> str:
    if slot == "amt":
        value = rng.choice([500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 8000, 10000, 12000, 20000])
        text = f"{value:,}" if lang == "en" and rng.random() < 0.5 else str(value)
    elif slot == "n":
        text = str(rng.randint(2, 12))
    else:  # hours
        text = str(rng.choice([14, 16, 18, 20, 22]))
    if lang in ("my", "km") and rng.random() < 0.6:
        digits = NATIVE_DIGITS[lang]
        text = "".join(digits[int(c)] if c.isdigit() else c for c in text)
    return text


def _fill(template: str, lang: str, rng: random.Random) -> str:
    def repl(match: re.Match[str]) -> str:
        slot = match.group(1)
        if slot in ("amt", "n", "h"):
            return _number(rng, slot, lang)
        return rng.choice(SLOTS[lang][slot])

    return _SLOT.sub(repl, template)


def _pool(templates: list[str], held_out: bool) -> list[str]:
    return [t for i, t in enumerate(templates) if held_out or i % 4 != 3]


def message(lang: str, rng: random.Random, held_out: bool) -> str:
    grievance = rng.random() < 0.25
    main = _pool((GRIEVANCE if grievance else FAMILY)[lang], held_out)
    other = _pool((FAMILY if grievance else GRIEVANCE)[lang], held_out)
    parts: list[str] = []
    if rng.random() < 0.6:
        parts.append(rng.choice(GREETINGS[lang]))
    count = rng.choice([1, 1, 2, 2, 2, 3])
    for _ in range(count):
        parts.append(rng.choice(other if rng.random() < 0.1 else main))
    if rng.random() < 0.4:
        parts.append(rng.choice(CLOSINGS[lang]))
    text = " ".join(_fill(p, lang, rng) for p in parts)
    if lang == "en" and rng.random() < 0.2:
        text = text.lower()
    return text


def generate(lang: str, held_out: bool) -> list[str]:
    rng = random.Random(f"{SEED}-{lang}-{'test' if held_out else 'train'}")
    return [message(lang, rng, held_out) for _ in range(MESSAGES_PER_HALF)]


def unseen_sentences(lang: str, per_template: int = 3) -> list[str]:
    """Single sentences from the held-out templates only (never in the training half), slots filled."""
    rng = random.Random(f"{SEED}-{lang}-unseen")
    templates = [t for pool in (FAMILY[lang], GRIEVANCE[lang]) for i, t in enumerate(pool) if i % 4 == 3]
    return [_fill(t, lang, rng) for t in templates for _ in range(per_template)]


def main() -> None:
    here = Path(__file__).resolve().parent
    for lang in ("my", "km", "th", "en"):
        for held_out, name in ((False, "train"), (True, "test")):
            lines = generate(lang, held_out)
            (here / f"{lang}.{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
