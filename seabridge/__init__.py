"""Seabridge's command line: ``seabridge`` and its subcommands (``seabridge.cli``)."""

from common import VERSION

__all__ = ["VERSION"]
