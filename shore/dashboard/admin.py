"""Administration: the users (add, unlock, remove), the vessels (register, revoke) and the audit log.
Only the administrator role reaches it; every change is audited. Vessel registration takes the same
values as ``seabridge keys register`` and checks them with the same rules (``shore.registry``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from common.keyfiles import KeyFileError, decode_key
from firmware_profiles import profile_names

from ..registry import validate_modem_id
from . import auth as perm
from .auth import AuthError, Role, Session, parse_role
from .data import DashboardData
from .pages import addr, page, page_context, render
from .state import clock_of, data_of

PROFILES = tuple(profile_names())
NETWORKS = ("iridium-directip", "rockblock", "inmarsat-idp")  # as ``seabridge keys register --network``


async def admin_page(
    request: Request, session: Session, status: int = 200, error: str | None = None, **draft: str
) -> Response:
    """The administration page; after a refused change, with the reason and the values as typed
    (``draft_user``/``draft_vessel`` prefill the add and register forms; never a password or key)."""
    data = data_of(request)
    users = await run_in_threadpool(data.users)
    vessels = await run_in_threadpool(data.vessels)
    audit = await run_in_threadpool(data.audit_log, 300)
    context = await run_in_threadpool(
        page_context,
        data,
        session,
        "admin",
        users=users,
        vessels=vessels,
        audit=audit,
        roles=[r.value for r in Role],
        profiles=PROFILES,
        networks=NETWORKS,
        error=error or request.query_params.get("error"),
        now=clock_of(request).now(),
        draft=draft,
    )
    return render("admin.html", status, **context)


@page(perm.ADMIN)
async def admin(request: Request, session: Session) -> Response:
    return await admin_page(request, session)


async def _change_user(data: DashboardData, session: Session, form: dict[str, str], now: float) -> None:
    """Apply one user change from the admin form; raises ``AuthError`` when it is refused."""
    action, name = form.get("action", ""), form.get("name", "")
    if action == "add":
        role = parse_role(form.get("role", ""))
        fleet = form.get("fleet", "").strip() or None
        await run_in_threadpool(data.add_user, name, role, form.get("password", ""), fleet, now)
    elif action == "unlock":
        await run_in_threadpool(data.unlock, name)
    elif action == "remove":
        if name == session.user.name:
            raise AuthError("you cannot remove yourself")
        await run_in_threadpool(data.remove_user, name)
    else:
        raise AuthError("unknown action")


@page(perm.ADMIN, mutating=True)
async def admin_users(request: Request, session: Session) -> Response:
    data = data_of(request)
    form = request.state.form
    action, name = form.get("action", ""), form.get("name", "")
    now = clock_of(request).now()
    try:
        await _change_user(data, session, form, now)
    except AuthError as exc:
        typed = {k: form.get(k, "")[:64] for k in ("name", "role", "fleet")} if action == "add" else {}
        return await admin_page(request, session, 400, str(exc), **{f"user_{k}": v for k, v in typed.items()})
    await run_in_threadpool(data.audit, session.user, f"user-{action}", name[:32], now, "", addr(request))
    return RedirectResponse("/admin", 303)


def _register(data: DashboardData, form: dict[str, str]) -> str:
    """Register (or re-register) a vessel from the admin form; returns its modem id. Raises
    ``ValueError`` with a sentence for the administrator when a value is refused."""
    name, fleet = form.get("name", "").strip(), form.get("fleet", "").strip() or "default"
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise ValueError("the vessel name must be 1 to 64 printable characters")
    if not 1 <= len(fleet) <= 32 or not fleet.isprintable():
        raise ValueError("the fleet must be 1 to 32 printable characters")
    modem_id = validate_modem_id(form.get("modem_id", "").strip().upper())
    if form.get("profile") not in PROFILES:
        raise ValueError(f"the modem profile must be one of {', '.join(PROFILES)}")
    if form.get("network") not in NETWORKS:
        raise ValueError(f"the network must be one of {', '.join(NETWORKS)}")
    try:
        key = decode_key(form.get("public_key", ""))
    except KeyFileError as exc:
        raise ValueError(f"the vessel public key (the text of its vessel.pub file): {exc}") from exc
    taken = next((v for v in data.vessels() if v.name == name and v.imei != modem_id), None)
    if taken is not None:
        raise ValueError(f"another vessel is already named {name}")
    data.archive.register_vessel(modem_id, name, key, fleet, form["profile"], form["network"])
    return modem_id


@page(perm.ADMIN, mutating=True)
async def admin_vessels(request: Request, session: Session) -> Response:
    data = data_of(request)
    form = request.state.form
    action = form.get("action", "")
    now = clock_of(request).now()
    try:
        if action == "register":
            target = await run_in_threadpool(_register, data, form)
        elif action == "revoke":
            target = form.get("modem_id", "")[:20]
            if not await run_in_threadpool(data.archive.revoke_vessel, target):
                raise ValueError("no such vessel")
        else:
            raise ValueError("unknown action")
    except ValueError as exc:
        typed = {k: form.get(k, "")[:64] for k in ("name", "modem_id", "fleet", "profile", "network")}
        return await admin_page(
            request, session, 400, str(exc), **{f"vessel_{k}": v for k, v in typed.items()}
        )
    await run_in_threadpool(data.audit, session.user, f"vessel-{action}", target, now, "", addr(request))
    return RedirectResponse("/admin#vessels", 303)


routes = [
    Route("/admin", admin, methods=["GET"]),
    Route("/admin/users", admin_users, methods=["POST"]),
    Route("/admin/vessels", admin_vessels, methods=["POST"]),
]
