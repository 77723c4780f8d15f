"""Shared pytest fixtures. Each section is self-contained; add new sections below the existing ones."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# =====================================================================================================
# MQTT brokers: a real Mosquitto (session) and the embedded amqtt broker (per test)
#
#   mosquitto       session-scoped; MQTT 5 + $share; anonymous; persistence on; .restart() keeps port
#                   and persistence. Skipped locally if /usr/sbin/mosquitto is missing, FAILS when
#                   env CI is set. Override the binary with MOSQUITTO_PATH.
#   embedded_broker function-scoped; shore.broker.EmbeddedBroker on its own event loop in a
#                   background thread, so sync tests can use it; password auth, MQTT 3.1.1.
#   any_broker      parametrized over both; yields .kind ("mosquitto" | "embedded") and .url.
# =====================================================================================================

MOSQUITTO_DEFAULT_PATH = "/usr/sbin/mosquitto"
_READY_TIMEOUT_S = 10.0
_START_ATTEMPTS = 5


def _free_tcp_port() -> int:
    """A currently free loopback port; never 1883 (a system Mosquitto may own it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 1883:
            return port


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class MosquittoProcess:
    """A Mosquitto child process with a generated config in ``workdir``."""

    host = "127.0.0.1"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_file = workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _write_config(self) -> Path:
        lines = []
        if os.geteuid() == 0:
            # Otherwise Mosquitto drops to `nobody` and silently fails to write persistence.
            lines.append("user root")
        lines += [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return conf

    def _spawn_and_wait(self) -> bool:
        """Start on ``self.port``; True once it accepts TCP, False if it exited (e.g. bind race)."""
        conf = self._write_config()
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if _accepts(self.host, self.port):
                return True
            time.sleep(0.02)
        self.stop()
        return False

    def start(self, *, keep_port: bool = False) -> None:
        """Start the broker; a new free port unless ``keep_port`` (then retry the same port)."""
        for _attempt in range(_START_ATTEMPTS):
            if not keep_port or not self.port:
                self.port = _free_tcp_port()
            if self._spawn_and_wait():
                return
            time.sleep(0.1)
        log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        raise RuntimeError(f"mosquitto did not start (last port {self.port}); log:\n{log[-2000:]}")

    def stop(self) -> None:
        """Terminate (Mosquitto saves its persistence file on SIGTERM), then wait, then kill."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self) -> None:
        """Stop and start again on the same port with the same persistence (broker-restart tests)."""
        self.stop()
        self.start(keep_port=True)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    binary = os.environ.get("MOSQUITTO_PATH", MOSQUITTO_DEFAULT_PATH)
    if not (Path(binary).is_file() or shutil.which(binary)):
        message = f"mosquitto binary not found at {binary} (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    broker = MosquittoProcess(binary, tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class EmbeddedBrokerThread:
    """An ``EmbeddedBroker`` served by its own event loop in a daemon thread."""

    def __init__(self, data_dir: Path) -> None:
        from shore.broker import EmbeddedBroker

        self.loop = asyncio.new_event_loop()
        self.broker = EmbeddedBroker(
            "127.0.0.1",
            0,
            data_dir=data_dir,
            username="seabridge-test",
            password=secrets.token_urlsafe(12),
        )
        self._thread = threading.Thread(target=self.loop.run_forever, name="embedded-broker", daemon=True)

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port

    @property
    def url(self) -> str:
        return self.broker.url

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.broker.start(), self.loop).result(timeout=10)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.broker.stop(), self.loop).result(timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self.loop.close()


@pytest.fixture
def embedded_broker(tmp_path: Path) -> Iterator[EmbeddedBrokerThread]:
    broker = EmbeddedBrokerThread(tmp_path / "embedded-broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class BrokerUnderTest:
    kind: str  # "mosquitto" | "embedded"
    url: str
    broker: Any  # MosquittoProcess | EmbeddedBrokerThread


@pytest.fixture(params=["mosquitto", "embedded"])
def any_broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    kind: str = request.param
    broker = request.getfixturevalue("mosquitto" if kind == "mosquitto" else "embedded_broker")
    return BrokerUnderTest(kind=kind, url=broker.url, broker=broker)


# =====================================================================================================
# PostgreSQL: a fresh schema per test in the local server's database (env SEABRIDGE_TEST_PG, default
# postgresql://postgres@127.0.0.1:5432/test; .ci/run starts the server). Skipped locally when the
# server does not answer, FAILS when env CI is set.
#
#   pg_url      function-scoped; a postgresql:// URL whose search_path is a new, empty schema
#               (dropped afterwards), so tests never see each other's tables.
# =====================================================================================================

PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = os.environ.get("SEABRIDGE_TEST_PG", PG_DEFAULT_URL)
    try:
        import psycopg

        admin = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except Exception as exc:  # any failure to reach the server decides skip/fail below
        message = f"PostgreSQL not reachable at {base}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    schema = f"t_{secrets.token_hex(6)}"
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


# =====================================================================================================
# CI: a missing service fails the run instead of skipping
#
#   With env CI set (any non-empty value but "false"/"0"), a test module that skips itself at collection
#   (a missing browser, an ``importorskip`` of Playwright, ...) is reported as an error, and so is any
#   test skipped with a reason naming a service the suite needs (browser, broker, database). The
#   fixtures above already fail for Mosquitto and PostgreSQL. ``make test`` runs ``pytest -rs`` so that
#   every remaining skip is listed with its reason.
# =====================================================================================================

_SERVICE_WORDS = ("chromium", "browser", "playwright", "mosquitto", "broker", "postgres", "database")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"CI: {collector.nodeid} skipped itself at collection ({_skip_reason(report)})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    reason = _skip_reason(report).lower() if report.skipped else ""
    if in_ci() and report.skipped and any(word in reason for word in _SERVICE_WORDS):
        report.outcome = "failed"
        report.longrepr = f"CI: a required service is missing: {_skip_reason(report)}"
