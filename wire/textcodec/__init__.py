"""Trained text codecs for the crews' languages: script detection, static context models, arithmetic coding."""

from .model import ContextModel, ModelCheckError, train
from .script import LANGUAGES, candidate_languages, detect_language

__all__ = ["LANGUAGES", "ContextModel", "ModelCheckError", "candidate_languages", "detect_language", "train"]
