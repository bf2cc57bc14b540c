"""The trace explorer's routes on ``ponder serve``: the page (``/ui``), its static files (shipped in the package:
no CDN at run time, no build step), and the read-only JSON it needs besides the chat API itself: the server's
strategies, scorers and caps, and the runs of the operator's evaluation store (``ponder serve --store``).

The page runs searches through ``/v1/chat/completions`` with ``stream`` and ``ponder.trace`` (the search's events
as it runs, the whole trace at the end), so what it draws is what the API answers.
"""

from __future__ import annotations

import threading
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ponder.server.responses import ApiError

if TYPE_CHECKING:
    from ponder.server.app import PonderServer

# every file the page may load, and its type; anything else under /ui/static is a 404 (no paths from requests)
STATIC = {"app.js": "text/javascript", "app.css": "text/css", "vendor/d3.min.js": "text/javascript",
          "vendor/LICENSE-d3.txt": "text/plain"}
# the page loads only this server's own scripts, styles and API
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def _ui_file(name: str):
    return files("ponder.ui").joinpath(name)


def strategies_schema() -> list[dict[str, Any]]:
    """Each registered strategy with its summary and its parameters (name, type, default, description)."""
    from ponder.strategies import available

    out = []
    for name, info in sorted(available().items()):
        props = info.params.model_json_schema().get("properties", {})
        params = [{"name": k, "type": p.get("type") or " | ".join(a.get("type", "?") for a in p.get("anyOf", [])),
                   "default": p.get("default"), "description": p.get("description", "")} for k, p in props.items()]
        out.append({"name": name, "summary": info.summary, "scorer": info.default_scorer, "size_param": info.size_param,
                    "params": params})
    return out


def add_explorer(app: FastAPI, server: PonderServer) -> None:
    config = server.config
    store = None
    if config.store:
        from ponder.evaluation.store import Store

        store = Store(config.store, readonly=True)  # a missing or unreadable store is refused when the server starts
    reading = threading.Lock()  # one connection: the worker threads take turns with it

    async def read(fn, *args):
        def locked():
            with reading:
                return fn(*args)
        return await run_in_threadpool(locked)

    def page() -> HTMLResponse:
        return HTMLResponse(_ui_file("index.html").read_text(encoding="utf-8"), headers={"Content-Security-Policy": CSP})

    @app.get("/ui", include_in_schema=False)
    async def ui_page():
        return page()

    @app.get("/ui/", include_in_schema=False)
    async def ui_slash():
        return RedirectResponse("/ui", status_code=308)

    @app.get("/ui/login", include_in_schema=False)
    async def ui_login():  # with no API key there is nothing to sign in to (with one, the auth middleware answers)
        return RedirectResponse("/ui", status_code=303)

    @app.get("/ui/static/{name:path}", include_in_schema=False)
    async def ui_static(name: str):
        if name not in STATIC:
            raise ApiError(404, f"no such file: {name}", type_="not_found_error")
        return FileResponse(str(_ui_file(name)), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @app.get("/ui/api/config", include_in_schema=False)
    async def ui_config():
        from ponder.scorers.registry import available as scorers

        return {"model": config.model_name, "cascade_models": list(config.cascade_models),
                "default_strategy": config.default_strategy, "strategies": strategies_schema(),
                "scorers": [{"name": n, "summary": s.summary} for n, s in sorted(scorers().items())],
                "caps": {"max_tokens": config.max_tokens_total, "max_seconds": config.max_seconds,
                         "max_samples": config.max_samples},
                "store": config.store is not None, "auth": config.api_key is not None}

    def need_store():
        if store is None:
            raise ApiError(404, "this server has no evaluation store (ponder serve --store FILE)", type_="not_found_error")
        return store

    @app.get("/ui/api/runs", include_in_schema=False)
    async def ui_runs():
        s = need_store()
        return {"runs": await read(s.runs)}

    @app.get("/ui/api/runs/{run}", include_in_schema=False)
    async def ui_run(run: str):
        from ponder.evaluation.explore import run_items

        s = need_store()
        found = await read(run_items, s, run)
        if found["config"] is None:
            raise ApiError(404, f"no run {run!r} in the store", type_="not_found_error")
        return found

    @app.get("/ui/api/trace", include_in_schema=False)
    async def ui_trace(run: str, item: str, model: str, strategy: str, params: str, budget: int = Query(ge=1),
                       task: str | None = None, seed: int | None = None):
        from ponder.evaluation.explore import result_trace

        s = need_store()
        found = await read(result_trace, s, run, item, model, strategy, params, budget, task, seed)
        if found is None:
            raise ApiError(404, "no such result in the store", type_="not_found_error")
        return found
