"""Who may call: the bearer-token check on the API (``/v1/``, ``/ledger/``) and on the trace explorer (``/ui``), as pure ASGI
middleware (so disconnect detection keeps working).

A browser cannot add a bearer header to a page it navigates to, so the explorer signs in once (``POST /ui/login``
with the key) and gets an HttpOnly, SameSite=Strict cookie holding an HMAC of the key (never the key itself). A
request the cookie authenticates must also carry ``X-Ponder-UI: 1`` unless it is a plain GET of an explorer page:
another site cannot set that header without a CORS preflight this server never grants, so the cookie cannot be
used by a page elsewhere to spend the server's compute (cross-site request forgery)."""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from urllib.parse import parse_qs

from fastapi.responses import HTMLResponse, RedirectResponse

from ponder.server.responses import ApiError

COOKIE = "ponder_ui"
UI_HEADER = b"x-ponder-ui"


def ui_session(api_key: str) -> str:
    """The explorer's cookie value for ``api_key``: an HMAC of it, so the cookie never carries the key."""
    return hmac.new(api_key.encode(), b"ponder trace explorer session", hashlib.sha256).hexdigest()


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def login_page(message: str = "", status: int = 401) -> HTMLResponse:
    note = f'<p class="err">{html.escape(message)}</p>' if message else ""
    return HTMLResponse(f"""<!doctype html><html><head><meta charset="utf-8"><title>ponder · sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26em;margin:4em auto}}input{{font-size:1em;padding:.3em;width:100%}}
.err{{color:#b00}}</style></head><body><h1>ponder trace explorer</h1>
<p>This server needs its API key.</p>{note}<form method="post" action="/ui/login">
<input type="password" name="key" id="key" autocomplete="current-password" placeholder="API key" autofocus>
<p><button type="submit" id="signin">Sign in</button></p></form></body></html>""", status_code=status)


class BearerAuth:
    """Every ``/v1/``, ``/ledger/`` (pass-through requests under a client's ledger, and the ledger) and ``/ui`` route needs ``Authorization: Bearer <key>`` or the explorer's session cookie;
    ``/ui/login`` is open (it checks the key and sets the cookie)."""

    def __init__(self, app, api_key: str):
        self.app, self.key = app, api_key.encode()
        self.session = ui_session(api_key).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        ui = path == "/ui" or path.startswith("/ui/")
        if not (path.startswith(("/v1/", "/ledger/")) or path == "/ledger" or ui):
            return await self.app(scope, receive, send)
        if path == "/ui/login":
            return await self._login(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"")
        token = given[7:] if given[:7].lower() == b"bearer " else b""
        if secrets.compare_digest(token, self.key):
            return await self.app(scope, receive, send)
        session = (_cookie(headers, COOKIE) or "").encode()
        if session and secrets.compare_digest(session, self.session):
            page = ui and scope["method"] == "GET" and not path.startswith("/ui/api/")
            if page or headers.get(UI_HEADER) == b"1":
                return await self.app(scope, receive, send)
        if ui and scope["method"] == "GET" and not path.startswith(("/ui/api/", "/ui/static/")):
            return await login_page()(scope, receive, send)
        response = ApiError(401, "invalid or missing API key (Authorization: Bearer …)", type_="authentication_error").response()
        return await response(scope, receive, send)

    async def _login(self, scope, receive, send):
        if scope["method"] != "POST":
            return await RedirectResponse("/ui", status_code=303)(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > 4096:
                return await login_page("that is not an API key", 400)(scope, receive, send)
            if not message.get("more_body"):
                break
        key = (parse_qs(body.decode("utf-8", errors="replace")).get("key") or [""])[0].encode()
        if not secrets.compare_digest(key, self.key):
            return await login_page("wrong key")(scope, receive, send)
        response = RedirectResponse("/ui", status_code=303)
        response.set_cookie(COOKIE, self.session.decode(), httponly=True, samesite="strict", path="/")
        return await response(scope, receive, send)
