"""Trained text models, one gzip'd JSON file per codec version and language (package data).

Files here are immutable once released: ``wire.codec`` pins each file's SHA-256 and refuses a file that
changed. A new training run is a new version with a new codec number; old versions stay forever so
the shore can decode anything a vessel ever sent.
"""
