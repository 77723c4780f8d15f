"""A process that has imported the gateway once and forks a fresh ``seabridge gateway run`` per request.

The power-cut benchmark (``bench.crash``) kills the gateway hundreds of times; starting a new Python
interpreter and importing the gateway each time would take longer than the runs themselves. This
process imports ``seabridge.cli`` and the gateway stack up front (it starts no thread, loop or
connection), then serves line commands on standard input:

* ``run CONFIG OUTPUT`` → forks a child that sends its standard output and error to ``OUTPUT`` and
  runs ``seabridge.cli.main(["gateway", "run", "--config", CONFIG])`` — the command's real entry point
  and code path — and answers ``pid N``;
* ``wait N`` → waits for child N to end and answers ``exit N STATUS`` (``-9`` after a SIGKILL).

End of input ends it. It is a benchmark harness, not a product entry point.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

from seabridge import cli

# What ``seabridge gateway run`` imports: loaded once here, so that every child starts warm.
WARM = ("gateway.daemon", "gateway.modem", "gateway.config", "common.config", "firmware_profiles")


def _child(config: str, output: str) -> None:
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        code = cli.main(["gateway", "run", "--config", config])
    except BaseException:  # report and leave without running the parent's cleanup
        import traceback

        traceback.print_exc()
        code = 70
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> int:
    for name in WARM:
        importlib.import_module(name)
    for line in sys.stdin:
        parts = line.split()
        if parts[:1] == ["run"] and len(parts) == 3:
            pid = os.fork()
            if pid == 0:
                _child(parts[1], parts[2])
            print(f"pid {pid}", flush=True)
        elif parts[:1] == ["wait"] and len(parts) == 2:
            pid, status = os.waitpid(int(parts[1]), 0)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            print(f"exit {pid} {code}", flush=True)
        else:
            print(f"error {line.strip()!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
