"""The repository's top level and the import rules between its parts.

``wire`` is the over-the-air format both ends share and imports none of the other parts; ``gateway``
(on the vessel) and ``shore`` (ashore) never import each other; ``common`` holds host-side helpers and
sees only ``wire`` and ``firmware_profiles``; only ``simulators`` and the command line see both ends.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("wire", "firmware_profiles", "common", "gateway", "shore", "simulators", "seabridge")

# part -> the other parts it may import
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "firmware_profiles": set(),
    "common": {"wire", "firmware_profiles"},
    "gateway": {"wire", "firmware_profiles", "common"},
    "shore": {"wire", "firmware_profiles", "common"},
    "simulators": {"wire", "firmware_profiles", "common", "gateway", "shore"},
    "seabridge": {"wire", "firmware_profiles", "common", "gateway", "shore", "simulators"},
}


def imported_parts(path: Path) -> set[tuple[str, int]]:
    """Top-level parts of this repository that a module imports (absolute imports), with line numbers."""
    found: set[tuple[str, int]] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in PARTS:
                found.add((top, node.lineno))
    return found


def test_the_specified_parts_are_top_level_packages() -> None:
    for part in PARTS:
        assert (ROOT / part / "__init__.py").is_file(), f"{part}/ is not a package at the repository root"
    for name in ("pyproject.toml", "README.md", "tests"):
        assert (ROOT / name).exists()
    # the command-line package holds the entry point and nothing of the product's parts
    leftovers = sorted(p.name for p in (ROOT / "seabridge").iterdir() if p.name != "__pycache__")
    assert leftovers == ["__init__.py", "cli.py"], leftovers


@pytest.mark.parametrize("part", PARTS)
def test_each_part_imports_only_what_the_layout_allows(part: str) -> None:
    violations = []
    for path in sorted((ROOT / part).rglob("*.py")):
        for top, line in sorted(imported_parts(path)):
            if top != part and top not in ALLOWED[part]:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert not violations, "\n".join(violations)


def test_the_rule_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom shore.relay import Relay\n\ndef f():\n    import gateway.store\n")
    assert imported_parts(module) == {("shore", 2), ("gateway", 5)}
