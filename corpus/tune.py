"""Choose the text models' training parameters without looking at the evaluation sentences.

``python corpus/tune.py`` trains candidate models on the messages the generator builds from half of
the *training* templates and scores them on single sentences from a quarter of the training
templates the candidates never saw (the evaluation half's templates are never used). It prints the
bytes per never-seen validation sentence for each candidate and the best one per language.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import generate  # noqa: E402
from phrases import FAMILY, GRIEVANCE  # noqa: E402

from wire.textcodec.arith import ArithmeticEncoder  # noqa: E402
from wire.textcodec.model import ContextModel, train  # noqa: E402

LANGS = ("my", "km", "th", "en")
GRID = [
    (order, scale, det)
    for order in (3, 4, 5)
    for scale in (6.0, 16.0, 32.0, 48.0)
    for det in (1.0, 4.0, 8.0)
]


def _validation_split(lang: str) -> tuple[list[str], list[str]]:
    """Training messages from templates i % 4 in (0, 1) and single sentences from i % 4 == 2."""
    original = generate._pool
    generate._pool = lambda templates, held_out: [t for i, t in enumerate(templates) if i % 4 in (0, 1)]
    try:
        rng = random.Random(f"{generate.SEED}-{lang}-tune")
        messages = [generate.message(lang, rng, False) for _ in range(generate.MESSAGES_PER_HALF)]
    finally:
        generate._pool = original
    rng = random.Random(f"{generate.SEED}-{lang}-tune-valid")
    templates = [t for pool in (FAMILY[lang], GRIEVANCE[lang]) for i, t in enumerate(pool) if i % 4 == 2]
    return messages, [generate._fill(t, lang, rng) for t in templates for _ in range(3)]


def coded_bytes(model: ContextModel, text: str) -> int:
    enc = ArithmeticEncoder()
    enc.encode_uniform(0, 4)
    model.encode_into(enc, text)
    return len(enc.finish()) + 1  # with the codec byte


def score(messages: list[str], valid: list[str], order: int, scale: float, det: float, lang: str) -> float:
    blob = train(messages, name="tune", lang=lang, order=order, min_count=1, escape_scale=scale,
                 deterministic_escape=det)
    model = ContextModel.from_bytes(blob)
    return sum(coded_bytes(model, t) for t in valid) / len(valid)


def main() -> None:
    for lang in LANGS:
        messages, valid = _validation_split(lang)
        results = sorted((score(messages, valid, *params, lang), params) for params in GRID)
        for value, params in results[:5]:
            print(f"{lang} order={params[0]} escape_scale={params[1]} deterministic_escape={params[2]}: {value:.2f} B")
        print()


if __name__ == "__main__":
    main()
