"""Seabridge: satellite connectivity at sea for fishing vessels."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("seabridge")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0"
