"""OPTIONS answers with every method the path's routes accept.

Starlette matches an OPTIONS request against one route at a time: the first route of the path
answers 405 with only its own methods in `Allow` (GET /v1/jobs hides POST /v1/jobs). This
middleware answers 204 with the union over every route of the path instead. CORS preflights
never reach it: CORSMiddleware sits outside and answers them first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette._utils import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send


class AllowedMethods:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        methods = _methods(scope)
        if not methods:  # no route has this path: the router's 404
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        headers = [(b"allow", allow.encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every endpoint route, also those of included routers (FastAPI nests them)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def _methods(scope: Scope) -> set[str]:
    """The methods of every route whose path template matches the request's path."""
    path = get_route_path(scope)
    found: set[str] = set()
    for route in _routes(scope["app"].router.routes):
        regex, methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and methods and regex.match(path):
            found |= set(methods)
    return found
