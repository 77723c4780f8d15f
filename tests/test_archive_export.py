"""``seabridge archive export``: one table of a SQLite shore archive as CSV or JSON."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest

from seabridge.cli import main
from shore.archive import Archive
from shore.archive_export import ExportError, export_table, table_names

KEY_A = bytes(range(32))
KEY_B = b"\xff" * 32


@pytest.fixture
def archive_file(tmp_path: Path) -> Path:
    path = tmp_path / "archive.sqlite3"
    archive = Archive(path)
    archive.register_vessel("300234010000001", "Sea Star 7", KEY_A, "north")
    archive.register_vessel("300234010000002", 'Moon Ray, "II"', KEY_B, "south", network="rockblock")
    with archive.tx() as db:
        Archive.add_event(db, "seabridge/v1/north/sea-star-7/up/crew", "ဟုတ်ကဲ့".encode(), 5.0)
    archive.close()
    return path


def test_csv_export_has_a_header_and_every_row_with_blobs_as_base64(archive_file: Path) -> None:
    out = io.StringIO()
    assert export_table(archive_file, "vessels", "csv", out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["name"] for r in rows] == ["Sea Star 7", 'Moon Ray, "II"']
    assert [r["fleet"] for r in rows] == ["north", "south"]
    assert rows[1]["network"] == "rockblock"
    assert base64.b64decode(rows[0]["public_key"]) == KEY_A
    assert base64.b64decode(rows[1]["public_key"]) == KEY_B


def test_json_export_is_an_array_of_objects_in_table_order(archive_file: Path) -> None:
    out = io.StringIO()
    assert export_table(archive_file, "events", "json", out) == 1
    [event] = json.loads(out.getvalue())
    assert event["topic"] == "seabridge/v1/north/sea-star-7/up/crew"
    assert base64.b64decode(event["payload"]).decode() == "ဟုတ်ကဲ့"
    assert event["created"] == 5.0


def test_an_empty_table_exports_as_an_empty_array_or_a_header_alone(archive_file: Path) -> None:
    out = io.StringIO()
    assert export_table(archive_file, "epochs", "json", out) == 0
    assert json.loads(out.getvalue()) == []
    out = io.StringIO()
    assert export_table(archive_file, "epochs", "csv", out) == 0
    assert out.getvalue().count("\n") == 1 and "imei" in out.getvalue()


def test_an_unknown_table_is_refused_with_the_tables_there_are(archive_file: Path) -> None:
    with pytest.raises(ExportError, match="vessels") as exc:
        export_table(archive_file, "vessels; DROP TABLE vessels", "csv", io.StringIO())
    assert "no table" in str(exc.value)
    assert "vessels" in table_names(archive_file)


def test_export_does_not_change_the_archive(archive_file: Path) -> None:
    before = archive_file.read_bytes()
    export_table(archive_file, "vessels", "json", io.StringIO())
    assert archive_file.read_bytes() == before


def test_the_command_writes_to_a_file_or_standard_output(
    archive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "vessels.json"
    args = ["archive", "export", "--archive", str(archive_file), "--table", "vessels", "--format", "json"]
    assert main([*args, "--output", str(target)]) == 0
    assert [v["name"] for v in json.loads(target.read_text(encoding="utf-8"))] == [
        "Sea Star 7",
        'Moon Ray, "II"',
    ]
    assert "2 rows of vessels exported" in capsys.readouterr().err
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(target.read_text(encoding="utf-8"))


def test_the_command_refuses_a_missing_archive_or_table_with_status_2(
    archive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = ["archive", "export", "--archive", str(tmp_path / "nope.sqlite3"), "--table", "vessels"]
    assert main([*missing, "--format", "csv"]) == 2
    assert "no archive file" in capsys.readouterr().err
    assert not (tmp_path / "nope.sqlite3").exists()
    wrong = ["archive", "export", "--archive", str(archive_file), "--table", "ships", "--format", "csv"]
    assert main(wrong) == 2
    assert "no table 'ships'" in capsys.readouterr().err
