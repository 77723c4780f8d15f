"""Code tables for catch records (package data): one CSV per list, rows are indexes on the air.

Each file starts with ``#`` comment lines naming its source and licence, then a header row, then one row
per code. A code's index is its row number (0-based, after the header) and never changes: tables are
append-only, and ``CODELIST_VERSION`` in ``wire.catch`` names how many rows each table had when a trip
started, so the shore reads every index against the table that was current on board.
"""
