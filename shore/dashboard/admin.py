"""Administration: the users (add, unlock, remove), the registered vessels and the audit log.
Only the administrator role reaches it; every change is audited."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from . import auth as perm
from .auth import AuthError, Role, Session, parse_role
from .data import DashboardData
from .pages import addr, page, page_context, render
from .state import clock_of, data_of


@page(perm.ADMIN)
async def admin(request: Request, session: Session) -> Response:
    data = data_of(request)
    users = await run_in_threadpool(data.users)
    vessels = await run_in_threadpool(data.vessels)
    audit = await run_in_threadpool(data.audit_log, 300)
    return render(
        "admin.html",
        **await run_in_threadpool(
            page_context,
            data,
            session,
            "admin",
            users=users,
            vessels=vessels,
            audit=audit,
            roles=[r.value for r in Role],
            error=request.query_params.get("error"),
            now=clock_of(request).now(),
        ),
    )


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
        return RedirectResponse(f"/admin?error={quote(str(exc))}", 303)
    await run_in_threadpool(data.audit, session.user, f"user-{action}", name[:32], now, "", addr(request))
    return RedirectResponse("/admin", 303)


routes = [
    Route("/admin", admin, methods=["GET"]),
    Route("/admin/users", admin_users, methods=["POST"]),
]
