"""The corpus the benchmarks measure on: held-out messages and never-seen sentences, per language."""

from __future__ import annotations

import importlib.util
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
LANGS = ("my", "km", "th", "en")


def load(lang: str, half: str) -> list[str]:
    """``corpus/<lang>.<half>.txt`` (``train`` or ``test``), one message per line."""
    return [t for t in (CORPUS / f"{lang}.{half}.txt").read_text(encoding="utf-8").splitlines() if t]


def unseen(lang: str) -> list[str]:
    """Single sentences built only from templates the training half never contains."""
    spec = importlib.util.spec_from_file_location("corpus_generate", CORPUS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.unseen_sentences(lang))
