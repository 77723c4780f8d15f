"""Fuzz targets for the modem drivers: AT response lines of both dialects (Iridium SBD, verbose and
numeric result codes; Inmarsat IDP with its CRC), fed to the sans-I/O drivers.

Inputs are real answers captured from the modem emulators for every operation, mutated, cut into
random chunks and interleaved with clock ticks. The promise checked for each input: the driver hands
out only typed events or ``RemoteProtocolError``; once every deadline has passed it is idle (one
outcome, no wedge); and it then completes ``initialize`` and ``request_signal`` against a fresh
emulator, i.e. no garbage leaves it unusable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from bench.fuzz_kit import Target, mutate_bytes
from firmware_profiles import load_profile
from gateway.modem import inmarsat_idp, iridium_sbd
from simulators.idp_modem import IdpLoopbackNetwork, IdpModemEmulator
from simulators.iridium_loopback import LoopbackNetwork
from simulators.iridium_modem import IridiumModemEmulator
from simulators.link_model import LinkModel

T0 = 1_735_689_600.0
_PAST_EVERY_DEADLINE_S = 100_000.0

Op = Callable[[Any, float], None]


class _Dialect:
    def __init__(self, name: str, module: Any, profile: str, ops: list[Op], extra: list[bytes]) -> None:
        self.name = name
        self.module = module
        self.profile = load_profile(profile)
        self.ops = ops
        self.corpus: list[list[bytes]] | None = None
        self.extra = extra

    def driver(self) -> Any:
        if self.module is iridium_sbd:
            return iridium_sbd.IridiumSbd(self.profile)
        return inmarsat_idp.InmarsatIdp(self.profile, use_crc=True)

    def emulator(self) -> Any:
        link = LinkModel(random.Random(5), "perfect")
        if self.module is iridium_sbd:
            net = LoopbackNetwork()
            modem: Any = IridiumModemEmulator(self.profile, link, net)
        else:
            net = IdpLoopbackNetwork()
            modem = IdpModemEmulator(self.profile, link, net)
        net.attach(modem)
        return modem

    def transcripts(self) -> list[list[bytes]]:
        """The emulator's answers to every operation, as delivered (one list of chunks per operation)."""
        if self.corpus is None:
            driver, modem = self.driver(), self.emulator()
            self.corpus = [_exchange(driver, modem, op, T0)[1] for op in self.ops]
            self.corpus.append(self.extra)
        return self.corpus


def _drain(driver: Any, module: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        try:
            event = driver.next_event()
        except module.RemoteProtocolError as exc:
            out.append(exc)
            continue
        if event is None:
            return out
        assert isinstance(event, module.Event), f"not a typed event: {event!r}"
        out.append(event)


def _exchange(driver: Any, modem: Any, op: Op, now: float) -> tuple[Any, list[bytes]]:
    """Run one operation against the emulator; its outcome and the modem's answer chunks."""
    module = iridium_sbd if isinstance(driver, iridium_sbd.IridiumSbd) else inmarsat_idp
    op(driver, now)
    answers: list[bytes] = []
    for _ in range(4000):
        out = driver.data_to_send()
        if out:
            modem.feed(out, now)
        back = modem.read_output()
        if back:
            answers.append(back)
            driver.receive_data(back, now)
        for event in _drain(driver, module):
            if type(event).__name__ != "RingAlert":
                return event, answers
        now += 0.05
        modem.tick(now)
        driver.tick(now)
    raise AssertionError("operation never ended against the emulator")


def _at_input(dialect: _Dialect) -> Callable[[random.Random], tuple[int, list[tuple[bytes, float]], bool]]:
    def generate(rng: random.Random) -> tuple[int, list[tuple[bytes, float]], bool]:
        corpus = dialect.transcripts()
        op = rng.randrange(len(dialect.ops))
        answer = b"".join(rng.choice(corpus) if rng.random() < 0.2 else corpus[op])
        flat = [b"".join(c) for c in corpus]
        answer = mutate_bytes(rng, answer, flat) if rng.random() < 0.9 else rng.randbytes(rng.randrange(80))
        chunks, pos = [], 0
        while pos < len(answer):
            size = rng.choice([1, 2, 3, 7, 16, 64, len(answer)])
            chunks.append((answer[pos : pos + size], rng.choice([0.0, 0.0, 0.05, 1.0, 30.0])))
            pos += size
        return op, chunks, rng.random() < 0.5

    return generate


def _at_check(dialect: _Dialect) -> Callable[[tuple[int, list[tuple[bytes, float]], bool]], str]:
    module = dialect.module

    def check(case: tuple[int, list[tuple[bytes, float]], bool]) -> str:
        op, chunks, echo = case
        driver = dialect.driver()
        if echo and hasattr(driver, "echo"):
            driver.echo = True
        now = T0
        dialect.ops[op](driver, now)
        outcomes: list[Any] = []
        for data, dt in chunks:
            driver.data_to_send()  # written to the (fuzzing) modem, as the serial adapter does
            driver.receive_data(data, now)
            outcomes += _drain(driver, module)
            now += dt
            driver.tick(now)
            outcomes += _drain(driver, module)
        now += _PAST_EVERY_DEADLINE_S
        driver.tick(now)
        outcomes += _drain(driver, module)
        driver.data_to_send()
        assert not driver.busy, f"driver still busy in {driver.state} after every deadline"
        ends = [o for o in outcomes if type(o).__name__ != "RingAlert"]
        assert len(ends) == 1, f"an operation must end exactly once, got {ends!r}"
        # The garbage may leave the driver believing the modem is mid-transfer or has CRC on, which a
        # fresh modem is not: the first initialize may fail on that, the second must not.
        modem = dialect.emulator()
        ready, _ = _exchange(driver, modem, lambda d, t: d.initialize(t), now)
        if type(ready).__name__ != "Ready":
            now += _PAST_EVERY_DEADLINE_S
            ready, _ = _exchange(driver, modem, lambda d, t: d.initialize(t), now)
        assert type(ready).__name__ == "Ready", f"initialize after garbage gave {ready!r} twice"
        signal, _ = _exchange(driver, modem, lambda d, t: d.request_signal(t), now + 1)
        assert type(signal).__name__ == "SignalQuality", f"signal after garbage gave {signal!r}"
        end = ends[0]
        return type(end).__name__ if not isinstance(end, Exception) else "RemoteProtocolError"

    return check


_IRIDIUM_OPS: list[Op] = [
    lambda d, t: d.initialize(t),
    lambda d, t: d.request_signal(t),
    lambda d, t: d.request_network_time(t),
    lambda d, t: d.request_status(t),
    lambda d, t: d.write_message(b"catch\r\nOK\r\n", t),
    lambda d, t: d.start_session(t),
    lambda d, t: d.read_message(t),
    lambda d, t: d.clear_buffers(2, t),
]
_IRIDIUM_NUMERIC = [b"AT+CSQ\r", b"+CSQ:3\r\n", b"0\r", b"4\r", b"126\r", b"\r\nSBDRING\r\n", b"READY\r\n", b"2\r\n"]

_IDP_OPS: list[Op] = [
    lambda d, t: d.initialize(t),
    lambda d, t: d.request_signal(t),
    lambda d, t: d.request_network_time(t),
    lambda d, t: d.submit("m1", 128, b"catch", t),
    lambda d, t: d.return_states(t),
    lambda d, t: d.forward_list(t),
    lambda d, t: d.get_forward("FM01", t),
    lambda d, t: d.mark_forward("FM01", t),
]

IRIDIUM = _Dialect("iridium", iridium_sbd, "iridium-9603", _IRIDIUM_OPS, _IRIDIUM_NUMERIC)
IDP = _Dialect("idp", inmarsat_idp, "inmarsat-idp", _IDP_OPS, [b"\r\nERROR\r\n", b"ATS80?\r\r\n104\r\n\r\nOK\r\n"])

AT_TARGETS = [Target(f"at-{d.name}", _at_input(d), _at_check(d)) for d in (IRIDIUM, IDP)]
