"""The catch log's words: the language a request asks for, field labels ("Species (ASFIS), line 3")
and translated refusal messages. Pure functions over the ``i18n`` catalogues; no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from common.web import decimal

from ..catchlog import CatchInputError
from ..i18n import LANG_COOKIE, catalogue, pick_language


def lang_of(request: Request, form: dict[str, str] | None = None) -> str:
    return pick_language(
        (form or {}).get("l"),
        request.query_params.get("lang") or request.query_params.get("l"),
        request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("accept-language", ""),
    )


def remember_language(response: Response, lang: str) -> None:
    """Keep the captain's language for answers that cannot read the form (a refused one)."""
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict")


def field_label(lang: str, field: str) -> str:
    """``lines[2].species`` → "Species (ASFIS), line 3" in the chosen language."""
    t = catalogue(lang)
    parts = field.split(".")
    label = t(f"field_{parts[-1].split('[')[0]}")
    for part in parts[:-1]:
        if "[" in part and part.endswith("]"):
            index = part[part.index("[") + 1 : -1]
            n = decimal(index, 4)
            if n is not None:
                label += ", " + t("line_n", n=n + 1)
    return label


def error_message(lang: str, exc: CatchInputError) -> str:
    t = catalogue(lang)
    return t("err_field", field=field_label(lang, exc.field), problem=t(exc.problem, **exc.values))


def iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M")


def when(value: object) -> str:
    """A stored event time (Unix seconds, or the ISO text as typed) as ``2026-12-07 14:05 UTC``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = str(value or "").replace("T", " ")
    return f"{text[:16]} UTC" if text else ""
