"""Group commit for the relay: deliveries that are waiting go to the pipeline in batches.

``FrameBatcher`` owns one thread. It takes deliveries from a queue (fed by the MQTT shared
subscription in the worker role, by the network endpoints in the one-process role) in batches bounded
by count (``max_frames``) and time (``max_wait_s`` after the first delivery of a batch), hands each
batch to the relay (one transaction), and only then tells every delivery's owner its outcome: the
MQTT acknowledgement to the broker, or the answer to the network endpoint. Nothing is confirmed before
its batch committed, so a process killed mid-batch loses nothing that was confirmed.

It must not parse frames or touch the archive itself.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .relay import NOT_STORED, Delivery

log = logging.getLogger("shore.batcher")

Done = Callable[[str], None]


@dataclass(frozen=True)
class BatchLimits:
    max_frames: int  # deliveries per transaction
    max_wait_s: float  # how long the first delivery of a batch waits for company


class FrameBatcher:
    def __init__(
        self,
        handle: Callable[[Sequence[Delivery]], list[str]],
        limits: BatchLimits,
        after_batch: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if limits.max_frames < 1 or limits.max_wait_s < 0:
            raise ValueError("a batch needs max_frames >= 1 and max_wait_s >= 0")
        self.handle = handle
        self.limits = limits
        self.after_batch = after_batch
        self._monotonic = monotonic
        self._queue: queue.SimpleQueue[tuple[Delivery, Done] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.frames = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand and what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, delivery: Delivery, done: Done) -> None:
        """Queue one delivery; ``done(outcome)`` runs on the batcher thread once its batch committed."""
        self._queue.put((delivery, done))

    async def process(self, delivery: Delivery) -> str:
        """Queue one delivery and wait (without blocking the event loop) until its batch committed."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()

        def done(outcome: str) -> None:  # batcher thread
            loop.call_soon_threadsafe(lambda: answer.done() or answer.set_result(outcome))

        self.submit(delivery, done)
        return await answer

    def _take(self) -> tuple[list[tuple[Delivery, Done]], bool]:
        """The next batch (blocking for its first delivery) and whether to stop after it."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        deadline = self._monotonic() + self.limits.max_wait_s
        while len(batch) < self.limits.max_frames:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - self._monotonic()
                if left <= 0:
                    break
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            if not batch:
                continue
            try:
                outcomes = self.handle([d for d, _done in batch])
            except Exception:  # the archive is unreachable: report it; the owners decide
                log.exception("batch of %d deliveries failed", len(batch))
                outcomes = [NOT_STORED] * len(batch)
            self.batches += 1
            self.frames += len(batch)
            for (d, done), outcome in zip(batch, outcomes, strict=True):
                log.debug("%s MOMSN %d: %s", d.imei, d.momsn, outcome)
                try:
                    done(outcome)
                except Exception:
                    log.exception("delivery callback failed")
            if self.after_batch is not None:
                try:
                    self.after_batch()
                except Exception:
                    log.exception("after-batch callback failed")
