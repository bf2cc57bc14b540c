"""Who may call: the bearer-token check on ``/v1/`` (pure ASGI, so disconnect detection keeps working)."""

from __future__ import annotations

import secrets

from ponder.server.responses import ApiError


class BearerAuth:
    """Pure ASGI middleware (unlike ``@app.middleware``, it leaves disconnect detection intact): every ``/v1/``
    route needs ``Authorization: Bearer <key>``."""

    def __init__(self, app, api_key: str):
        self.app, self.key = app, api_key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"")
            token = given[7:] if given[:7].lower() == b"bearer " else b""
            if not secrets.compare_digest(token, self.key):
                response = ApiError(401, "invalid or missing API key (Authorization: Bearer …)", type_="authentication_error").response()
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)
