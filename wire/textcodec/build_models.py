"""Train the text models from the corpus: ``python -m wire.textcodec.build_models CORPUS OUT --version N``.

Reads ``CORPUS/<lang>.train.txt`` (one message per line; the ``.test.txt`` half is never read) and
writes ``OUT/cm<N>-<lang>.json.gz`` plus the SHA-256 of each file, which ``wire.codec`` pins. A released
version's files are never regenerated or edited: a new training run is a new version with a new codec
number.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path

from .model import train
from .script import LANGUAGES


@dataclass(frozen=True)
class TrainingParams:
    """How one released model version was trained (part of what makes its files reproducible)."""

    order: int
    min_count: int
    escape_scale: float
    deterministic_escape: float
    check_bits: int = 16


# Version 2: lower order and far more escape probability, chosen by ``python corpus/tune.py`` on a
# validation split of the training templates: new wording escapes to shorter contexts cheaply.
PARAMS = {1: TrainingParams(5, 1, 6.0, 1.0), 2: TrainingParams(3, 1, 32.0, 8.0)}
ORDER = PARAMS[1].order
MIN_COUNT = PARAMS[1].min_count
ESCAPE_SCALE = PARAMS[1].escape_scale
DETERMINISTIC_ESCAPE = PARAMS[1].deterministic_escape
CHECK_BITS = PARAMS[1].check_bits


def train_language(lines: list[str], version: int, lang: str) -> bytes:
    p = PARAMS[version]
    return train(
        [line for line in lines if line],
        name=f"cm{version}-{lang}",
        lang=lang,
        order=p.order,
        min_count=p.min_count,
        check_bits=p.check_bits,
        escape_scale=p.escape_scale,
        deterministic_escape=p.deterministic_escape,
    )


def train_version(corpus: Path, out: Path, version: int) -> dict[str, str]:
    digests = {}
    out.mkdir(parents=True, exist_ok=True)
    for lang in LANGUAGES:
        lines = (corpus / f"{lang}.train.txt").read_text(encoding="utf-8").splitlines()
        blob = train_language(lines, version, lang)
        path = out / f"cm{version}-{lang}.json.gz"
        path.write_bytes(blob)
        digests[lang] = hashlib.sha256(blob).hexdigest()
    return digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", type=int, required=True)
    args = parser.parse_args()
    for lang, digest in train_version(args.corpus, args.out, args.version).items():
        print(f'"{lang}": "{digest}",')


if __name__ == "__main__":
    main()
