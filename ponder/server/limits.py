"""How much a request may send: the body cap, enforced before anything parses the body."""

from __future__ import annotations

from ponder.server.responses import ApiError


class BodyLimit:
    """Pure ASGI middleware: a request body over ``limit`` bytes is answered 413 before anything parses it
    (by its Content-Length, or by counting a chunked body as it arrives)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = ApiError(413, f"the request body is larger than this server's limit of {self.limit} bytes",
                           param="body").response()
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await too_big(scope, receive, send)
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message], receive), send)
            total += len(message.get("body", b""))
            if total > self.limit:
                return await too_big(scope, receive, send)
            chunks.append(message)
            if not message.get("more_body"):
                break
        return await self.app(scope, _replay(chunks, receive), send)


def _replay(messages: list[dict], receive):
    async def replayed():
        return messages.pop(0) if messages else await receive()

    return replayed
