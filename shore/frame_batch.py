"""One batch of MO frames in one archive transaction (group commit).

It owns the receive-side state the relay reads while it applies a batch: the vessel rows (locked in
IMEI order on PostgreSQL, so workers never deadlock), their replay windows, which deliveries and
records the archive already holds, the records still waiting to be published, and a savepoint per
frame. That state is read in a few queries per batch instead of a dozen round trips per frame. Writes
nobody reads back within the batch (frame log, records, outbox events, acks owed) are held and sent
with ``executemany`` (pipelined on PostgreSQL); any other statement first sends what is held, so it
sees the batch's own writes. The batch commits once.

A frame runs inside :meth:`FrameBatch.frame`, which is a savepoint plus an undo log of the in-memory
state and of the held writes: a frame that fails rolls back alone and the rest of the batch commits.
The SQL ``SAVEPOINT`` is issued only when the frame sends a statement of its own (held writes of a
failed frame are simply dropped). It does not parse frames (the relay does) and holds nothing beyond
one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from wire.replay import ReplayWindow

from .archive_schema import VESSEL_COLUMNS, Vessel, vessel_from_row

FrameKey = tuple[str, int, bytes]  # (imei, momsn, raw): one delivery
MARK_UPSERT = (
    "INSERT INTO marks (source, value, updated) VALUES (?, ?, ?) "
    "ON CONFLICT (source) DO UPDATE SET value = excluded.value, updated = excluded.updated"
)
EVENT_INSERT = "INSERT INTO events (topic, payload, retain, created) VALUES (?, ?, ?, ?)"
_ABSENT = object()


def _in(column: str, values: list[Any], dialect: str) -> tuple[str, list[Any]]:
    """``column IN (...)`` and its parameters; on PostgreSQL ``= ANY(array)``, one parameter, so the
    statement text is the same for every batch (parsed and prepared once)."""
    if dialect == "postgresql":
        return f"{column} = ANY(?)", [values]
    return f"{column} IN ({', '.join('?' * len(values))})", values


class FrameBatch:
    """The archive connection of one batch transaction, with the batch's receive-side state."""

    def __init__(self, db: Any, dialect: str, epochs: dict[tuple[str, int], bytes]) -> None:
        self.db = db
        self.dialect = dialect
        self.vessels: dict[str, Vessel] = {}
        self._windows: dict[str, ReplayWindow] = {}
        self._contact: dict[str, float] = {}
        self._frames: dict[FrameKey, tuple[int | None, str]] = {}  # (row id or None if new, outcome)
        self._claimed: dict[FrameKey, tuple[str, float]] = {}  # new deliveries: (network, received)
        self._records: set[tuple[str, int]] = set()
        self._unpublished: dict[str, dict[int, tuple[int, bytes]]] = {}
        self._epochs_shared = epochs  # committed epoch keys, shared across batches
        self.epochs: dict[tuple[str, int], bytes] = {}  # added in this batch (merged after commit)
        self._undo: list[Callable[[], None]] | None = None
        self._held: dict[str, list[list[Any]]] = {}  # statement -> rows, sent in first-use order
        self._held_records: dict[tuple[str, int], list[Any]] = {}  # record rows not sent yet
        self._frame_start: dict[str, int] | None = None  # held rows per statement when the frame began
        self._savepoint: str | None = None  # the open frame's SQL savepoint, once issued
        self._savepoints = 0
        self._after_commit: list[Callable[[], None]] = []
        self._staged: dict[Any, Any] = {}
        self._marks: dict[str, str | None] = {}  # marks read or written in this batch
        self._marks_written: dict[str, tuple[str, float]] = {}  # written: (value, when), saved at the end
        self._retained: dict[str, tuple[bytes, float]] = {}  # retained state events: the last per topic
        self._objects: dict[str, Any] = {}  # marks held as objects (receipt ledgers, airtime counts)
        self._object_dumps: dict[str, tuple[Callable[[Any], str], float]] = {}  # changed: how to save, when

    # --- statements -----------------------------------------------------------------------------------

    def execute(self, sql: str, args: Any = ()) -> Any:
        """Run a statement now (after sending the held writes, so it sees them)."""
        self._enter_savepoint()
        self.flush()
        return self.db.execute(sql, args)

    def executemany(self, sql: str, args: Any) -> Any:
        self._enter_savepoint()
        self.flush()
        return self.db.executemany(sql, args)

    def defer(self, sql: str, args: Any) -> None:
        """Hold a write whose result nobody reads; it goes out with the others of its kind."""
        self._held.setdefault(sql, []).append(args if isinstance(args, list) else list(args))

    def flush(self) -> None:
        """Send the held writes (one ``executemany`` per statement)."""
        held, self._held = self._held, {}
        self._held_records.clear()
        for sql, rows in held.items():
            if rows:
                self.db.executemany(sql, rows)

    def _enter_savepoint(self) -> None:
        """The open frame is about to send statements: write the earlier frames' rows, then open the
        frame's SQL savepoint, so rolling back to it keeps them."""
        if self._frame_start is None or self._savepoint is not None:
            return
        mine = {sql: rows[self._frame_start.get(sql, 0) :] for sql, rows in self._held.items()}
        for sql, rows in self._held.items():
            del rows[self._frame_start.get(sql, 0) :]
        unsent = {id(row) for rows in mine.values() for row in rows}
        records = {k: row for k, row in self._held_records.items() if id(row) in unsent}
        self.flush()
        self._held_records.update(records)
        self._savepoints += 1
        self._savepoint = f"frame{self._savepoints}"
        self.db.execute(f"SAVEPOINT {self._savepoint}")
        self._held = {sql: rows for sql, rows in mine.items() if rows}
        self._frame_start = {}

    def on_commit(self, step: Callable[[], None]) -> None:
        """Run ``step`` once the batch committed (to fill caches with what it stored)."""
        self._after_commit.append(step)
        self._on_undo(self._after_commit.pop)

    def stage(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        """Put ``value`` in ``cache`` once the batch committed; until then :meth:`staged` finds it."""
        self._staged[key] = value
        self._on_undo(lambda: self._staged.pop(key, None))
        self.on_commit(lambda: cache.__setitem__(key, value))

    def staged(self, key: Any) -> Any:
        return self._staged.get(key)

    def committed(self) -> None:
        for step in self._after_commit:
            step()

    # --- loading, once per batch --------------------------------------------------------------------

    def load_vessels(self, imeis: Iterable[str]) -> None:
        """Lock and read the batch's vessels (registry row and replay window)."""
        ordered = sorted(set(imeis))
        if not ordered:
            return
        lock = " FOR UPDATE" if self.dialect == "postgresql" else ""
        where, args = _in("imei", ordered, self.dialect)
        rows = self.db.execute(
            f"SELECT {VESSEL_COLUMNS}, rx_highest, rx_bitmap FROM vessels WHERE {where} ORDER BY imei{lock}",
            args,
        ).fetchall()
        for row in rows:
            vessel = vessel_from_row(tuple(row[:-2]))
            self.vessels[vessel.imei] = vessel
            self._windows[vessel.imei] = ReplayWindow(int(row[-2]), int(row[-1]))

    def load_frames(self, keys: Iterable[FrameKey]) -> None:
        """Which of these deliveries the archive holds already, and their outcome."""
        keys = set(keys)
        if not keys:
            return
        by_imei, imeis = _in("imei", sorted({k[0] for k in keys}), self.dialect)
        by_momsn, momsns = _in("momsn", sorted({k[1] for k in keys}), self.dialect)
        for row_id, imei, momsn, raw, outcome in self.db.execute(
            f"SELECT id, imei, momsn, raw, outcome FROM frames_in WHERE {by_imei} AND {by_momsn}",
            [*imeis, *momsns],
        ).fetchall():
            key = (imei, int(momsn), bytes(raw))
            if key in keys:
                self._frames[key] = (int(row_id), outcome)

    def load_records(self, keys: Iterable[tuple[str, int]], imeis: Iterable[str]) -> None:
        """Which of these (imei, record id) are delivered, and every record of ``imeis`` not yet
        published (crew messages waiting for their epoch, catch events waiting for their trip)."""
        keys = set(keys)
        if keys:
            by_imei, vessels = _in("imei", sorted({k[0] for k in keys}), self.dialect)
            by_rid, rids = _in("rid", sorted({k[1] for k in keys}), self.dialect)
            for imei, rid in self.db.execute(
                f"SELECT imei, rid FROM records WHERE {by_imei} AND {by_rid}", [*vessels, *rids]
            ).fetchall():
                if (imei, int(rid)) in keys:
                    self._records.add((imei, int(rid)))
        ordered = sorted(set(imeis))
        for imei in ordered:
            self._unpublished[imei] = {}
        if ordered:
            where, args = _in("imei", ordered, self.dialect)
            for imei, rid, kind, body in self.db.execute(
                f"SELECT imei, rid, kind, body FROM records WHERE {where} AND published IS NULL", args
            ).fetchall():
                self._unpublished[imei][int(rid)] = (int(kind), bytes(body))

    # --- one frame ------------------------------------------------------------------------------------

    @contextmanager
    def frame(self) -> Iterator[None]:
        """A savepoint for one frame: on an exception its writes and in-memory changes are undone and
        the exception goes on; the other frames of the batch are untouched."""
        self._undo = []
        self._frame_start = {sql: len(rows) for sql, rows in self._held.items()}
        self._savepoint = None
        try:
            yield
        except BaseException:
            undo, self._undo = self._undo, None
            for step in reversed(undo):
                step()
            for sql, rows in self._held.items():
                del rows[self._frame_start.get(sql, 0) :]
            if self._savepoint is not None:
                self.db.execute(f"ROLLBACK TO SAVEPOINT {self._savepoint}")
                self.db.execute(f"RELEASE SAVEPOINT {self._savepoint}")
                settle = getattr(self.db, "settle_rollback", None)  # PostgreSQL pipeline only
                if settle is not None:
                    settle()
            raise
        finally:
            self._frame_start = None
            self._undo = None
        if self._savepoint is not None:
            self.db.execute(f"RELEASE SAVEPOINT {self._savepoint}")
        self._savepoint = None

    def _on_undo(self, step: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(step)

    def _keep_entry(self, mapping: dict[Any, Any], key: Any) -> None:
        """Undo, if the open frame fails, whatever it does to ``mapping[key]`` from here on."""
        if self._undo is None:
            return
        before = mapping.get(key, _ABSENT)
        if before is _ABSENT:
            self._undo.append(lambda: mapping.pop(key, None))
        else:
            self._undo.append(lambda: mapping.__setitem__(key, before))

    def claim(self, imei: str, momsn: int, network: str, raw: bytes, now: float) -> bool:
        """True if this delivery is new or only queued by an ingest endpoint (process it), False if it
        was processed before. The frame's row is written by :meth:`outcome`."""
        key = (imei, momsn, raw)
        known = self._frames.get(key)
        if known is not None:
            return known[1] == "queued"
        if key in self._claimed:
            return False
        self._claimed[key] = (network, now)
        self._on_undo(lambda: self._claimed.pop(key, None))
        return True

    def forget_claim(self, imei: str, momsn: int, raw: bytes) -> None:
        """A claimed delivery that will not be stored (a rejection over the archive's cap); a row an
        ingest endpoint queued for it is deleted."""
        key = (imei, momsn, raw)
        claimed = self._claimed.pop(key, None)
        known = self._frames.get(key)
        if claimed is not None:
            self._on_undo(lambda: self._claimed.setdefault(key, claimed))
        elif known is not None:
            self.defer("DELETE FROM frames_in WHERE imei = ? AND momsn = ? AND raw = ?", (imei, momsn, raw))
            self._frames.pop(key, None)
            self._on_undo(lambda: self._frames.__setitem__(key, known))

    def outcome(self, imei: str, momsn: int, raw: bytes, outcome: str) -> None:
        key = (imei, momsn, raw)
        claimed = self._claimed.pop(key, None)
        known = self._frames.get(key)
        if claimed is not None:
            network, now = claimed
            self.defer(
                "INSERT OR IGNORE INTO frames_in (imei, momsn, network, received, raw, outcome) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (imei, momsn, network, now, raw, outcome),
            )
            self._frames[key] = (None, outcome)
            self._on_undo(lambda: (self._frames.pop(key, None), self._claimed.setdefault(key, claimed)))
        elif known is not None:
            row_id = known[0]
            if row_id is None:
                self.defer(
                    "UPDATE frames_in SET outcome = ? WHERE imei = ? AND momsn = ? AND raw = ?",
                    (outcome, imei, momsn, raw),
                )
            else:
                self.defer("UPDATE frames_in SET outcome = ? WHERE id = ?", (outcome, row_id))
            self._frames[key] = (row_id, outcome)
            self._on_undo(lambda: self._frames.__setitem__(key, known))

    def window(self, imei: str, now: float) -> ReplayWindow:
        """The vessel's replay window, to be changed in place; saved once when the batch ends."""
        window = self._windows[imei]
        saved = (window.highest, window.bitmap, self._contact.get(imei))

        def restore() -> None:
            window.highest, window.bitmap = saved[0], saved[1]
            if saved[2] is None:
                self._contact.pop(imei, None)
            else:
                self._contact[imei] = saved[2]

        self._on_undo(restore)
        self._contact[imei] = now
        return window

    def save_windows(self) -> None:
        """Write the replay window and last contact of every vessel a frame of the batch reached."""
        rows = [
            (self._windows[imei].highest, str(self._windows[imei].bitmap), now, imei)
            for imei, now in sorted(self._contact.items())
        ]
        if rows:
            self.db.executemany(
                "UPDATE vessels SET rx_highest = ?, rx_bitmap = ?, last_contact = ?, silent_alerted = 0 "
                "WHERE imei = ?",
                rows,
            )

    def finish(self) -> None:
        """Send everything held, the replay windows and the marks; the batch is ready to commit."""
        self.flush()
        self.save_windows()
        self.save_marks()
        self.save_retained()

    # --- retained state events --------------------------------------------------------------------------

    def retained_event(self, topic: str, payload: bytes, now: float) -> None:
        """A retained state event (a vessel's last contact, position, open alert): a later one on the
        same topic in this batch supersedes it, so only the last is written, after the batch's other
        events."""
        self._keep_entry(self._retained, topic)
        self._retained[topic] = (payload, now)

    def save_retained(self) -> None:
        rows = [(topic, payload, 1, now) for topic, (payload, now) in self._retained.items()]
        self._retained.clear()
        if rows:
            self.db.executemany(EVENT_INSERT, rows)

    # --- marks -----------------------------------------------------------------------------------------

    def load_marks(self, sources: Iterable[str]) -> None:
        """Read these marks in one statement (the receipt ledgers, airtime counts... of the batch's
        vessels); later reads and writes of them in the batch stay in memory."""
        wanted = sorted(set(sources) - self._marks.keys())
        if not wanted:
            return
        where, args = _in("source", wanted, self.dialect)
        found = dict(self.db.execute(f"SELECT source, value FROM marks WHERE {where}", args).fetchall())
        for source in wanted:
            value = found.get(source)
            self._marks[source] = None if value is None else str(value)

    def mark(self, source: str) -> str | None:
        """A mark's value as this batch sees it (its own writes included)."""
        changed = self._object_dumps.get(source)
        if changed is not None:
            return changed[0](self._objects[source])
        if source not in self._marks:
            self.load_marks([source])
        return self._marks[source]

    def set_mark(self, source: str, value: str, now: float) -> None:
        """Write a mark; it is saved once, with its last value, when the batch ends. An object handed
        out for it (:meth:`mark_object`) is dropped: a later one is parsed from this value."""
        for mapping in (self._marks, self._marks_written, self._objects, self._object_dumps):
            self._keep_entry(mapping, source)
        self._objects.pop(source, None)
        self._object_dumps.pop(source, None)
        self._marks[source] = value
        self._marks_written[source] = (value, now)

    def mark_object(
        self,
        source: str,
        parse: Callable[[str | None], Any],
        dump: Callable[[Any], str],
        copy: Callable[[Any], Any],
        now: float,
    ) -> Any:
        """A mark as an object the caller changes in place: parsed once per batch and written (with
        ``dump``) once at its end, instead of parsed and written by every frame. A frame that fails
        gets back the object as it was before the frame (a ``copy`` taken when the frame touched it)."""
        obj = self._objects.get(source)
        if obj is None:
            obj = self._objects[source] = parse(self.mark(source))
        if self._undo is not None:
            before = copy(obj)  # the caller changes ``obj`` itself: keep a copy to go back to
            self._undo.append(lambda: self._objects.__setitem__(source, before))
            self._keep_entry(self._object_dumps, source)
        self._object_dumps[source] = (dump, now)
        return self._objects[source]

    def save_marks(self) -> None:
        for source, (dump, now) in self._object_dumps.items():
            self._marks_written[source] = (dump(self._objects[source]), now)
        self._object_dumps.clear()
        rows = [(source, value, at) for source, (value, at) in sorted(self._marks_written.items())]
        self._marks_written.clear()
        if rows:
            self.db.executemany(MARK_UPSERT, rows)

    # --- records ---------------------------------------------------------------------------------------

    def record_delivered(self, imei: str, rid: int) -> bool:
        return (imei, rid) in self._records

    def add_record(self, imei: str, rid: int, kind: int, body: bytes, now: float) -> bool:
        """Store a delivered record once; False if it was delivered before."""
        key = (imei, rid)
        if key in self._records:
            return False
        row: list[Any] = [imei, rid, kind, body, now, None]
        self.defer(
            "INSERT OR IGNORE INTO records (imei, rid, kind, body, received, published) VALUES (?, ?, ?, ?, ?, ?)",
            row,
        )
        self._held_records[key] = row
        self._records.add(key)
        waiting = self._unpublished.setdefault(imei, {})
        waiting[rid] = (kind, body)

        def undo() -> None:
            self._records.discard(key)
            self._held_records.pop(key, None)
            waiting.pop(rid, None)

        self._on_undo(undo)
        return True

    def mark_published(self, imei: str, rid: int, now: float) -> None:
        held = self._held_records.get((imei, rid))
        if held is not None:  # stored by this batch and not sent yet: store it published
            held[5] = now
            self._on_undo(lambda: held.__setitem__(5, None))
        else:
            self.defer("UPDATE records SET published = ? WHERE imei = ? AND rid = ?", (now, imei, rid))
        waiting = self._unpublished.get(imei, {})
        entry = waiting.pop(rid, None)
        if entry is not None:
            self._on_undo(lambda: waiting.__setitem__(rid, entry))

    def unpublished(self, imei: str, kind: int) -> list[tuple[int, bytes]]:
        """(rid, body) of the vessel's records of ``kind`` that wait to be published, oldest first."""
        waiting = self._unpublished.get(imei, {})
        return [(rid, body) for rid, (k, body) in sorted(waiting.items()) if k == kind]

    # --- crew epochs -----------------------------------------------------------------------------------

    def add_epoch(self, imei: str, number: int, public_key: bytes) -> None:
        self.defer(
            "INSERT OR IGNORE INTO epochs (imei, number, public_key) VALUES (?, ?, ?)",
            (imei, number, public_key),
        )
        key = (imei, number)
        if key not in self.epochs and key not in self._epochs_shared:
            self.epochs[key] = public_key
            self._on_undo(lambda: self.epochs.pop(key, None))

    def epoch_key(self, imei: str, number: int) -> bytes | None:
        key = (imei, number)
        found = self.epochs.get(key) or self._epochs_shared.get(key)
        if found is None:
            row = self.db.execute(
                "SELECT public_key FROM epochs WHERE imei = ? AND number = ?", (imei, number)
            ).fetchone()
            if row is not None:
                found = self._epochs_shared[key] = bytes(row[0])  # committed before this batch
        return found
