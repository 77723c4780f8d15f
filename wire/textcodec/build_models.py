"""Train the text models from the corpus: ``python -m wire.textcodec.build_models CORPUS OUT --version N``.

Reads ``CORPUS/<lang>.train.txt`` (one message per line; the ``.test.txt`` half is never read) and
writes ``OUT/cm<N>-<lang>.json.gz`` plus the SHA-256 of each file, which ``wire.codec`` pins. A released
version's files are never regenerated or edited: a new training run is a new version with a new codec
number.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from .model import train
from .script import LANGUAGES

ORDER = 5
MIN_COUNT = 1
ESCAPE_SCALE = 6.0
DETERMINISTIC_ESCAPE = 1.0
CHECK_BITS = 16


def train_version(corpus: Path, out: Path, version: int) -> dict[str, str]:
    digests = {}
    out.mkdir(parents=True, exist_ok=True)
    for lang in LANGUAGES:
        lines = (corpus / f"{lang}.train.txt").read_text(encoding="utf-8").splitlines()
        blob = train(
            [line for line in lines if line],
            name=f"cm{version}-{lang}",
            lang=lang,
            order=ORDER,
            min_count=MIN_COUNT,
            check_bits=CHECK_BITS,
            escape_scale=ESCAPE_SCALE,
            deterministic_escape=DETERMINISTIC_ESCAPE,
        )
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
