"""The committed corpus and model files are exactly what their generator and trainer produce."""

from __future__ import annotations

import gzip
import importlib.util
import json
from importlib import resources
from pathlib import Path

import pytest

from wire.codec import CODEC_TEXT_V1, TEXT_MODEL_SETS
from wire.textcodec import build_models
from wire.textcodec.model import train

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
LANGS = ("my", "km", "th", "en")


def _generator():
    spec = importlib.util.spec_from_file_location("corpus_generate", CORPUS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lang", LANGS)
def test_committed_corpus_matches_its_generator(lang: str) -> None:
    gen = _generator()
    for held_out, half in ((False, "train"), (True, "test")):
        committed = (CORPUS / f"{lang}.{half}.txt").read_text(encoding="utf-8").splitlines()
        assert committed == gen.generate(lang, held_out)


@pytest.mark.parametrize("codec", sorted(TEXT_MODEL_SETS))
@pytest.mark.parametrize("lang", LANGS)
def test_released_model_tables_are_reproducible_from_the_training_half(lang: str, codec: int) -> None:
    mset = TEXT_MODEL_SETS[codec]
    lines = (CORPUS / f"{lang}.train.txt").read_text(encoding="utf-8").splitlines()
    if codec == CODEC_TEXT_V1:
        blob = train(
            lines,
            name=f"cm{mset.version}-{lang}",
            lang=lang,
            order=build_models.ORDER,
            min_count=build_models.MIN_COUNT,
            check_bits=build_models.CHECK_BITS,
            escape_scale=build_models.ESCAPE_SCALE,
            deterministic_escape=build_models.DETERMINISTIC_ESCAPE,
        )
    else:
        blob = build_models.train_language(lines, mset.version, lang)
    released = (resources.files("wire.models") / mset.filename(lang)).read_bytes()
    assert json.loads(gzip.decompress(blob)) == json.loads(gzip.decompress(released))
