"""Run the benchmarks: ``python -m bench [NAME ...]``, or one with its options: ``python -m bench NAME --opt``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> int:
    options = [a for a in argv if a.startswith("-")]
    if options:  # ``NAME --opt ...``: one benchmark, its own options
        name, rest = argv[0], argv[1:]
        return int(importlib.import_module(f"bench.{name}").main(rest) or 0)
    names = argv or sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    status = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"== bench.{name} ==", flush=True)
        started = time.perf_counter()
        takes_argv = bool(inspect.signature(module.main).parameters)
        status |= int((module.main([]) if takes_argv else module.main()) or 0)
        print(f"(bench.{name} took {time.perf_counter() - started:.1f} s)\n", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
