"""The board's web server: the page, its static files and one server-sent event stream per board.

Routes: ``/board`` (all teams), ``/board/<team>``, ``/board/static/<file>``, and
``/board/api/events?team=<team>`` (text/event-stream, one JSON message per change). Read-only:
nothing here takes input beyond the team and the display options in the URL. With a token set,
every request but the static files' must carry ``?token=<token>`` (compared in constant time; request lines are never
logged, so the token is not either).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import aiohttp
from aiohttp import web

from schemas.config import KpimonConfig
from streams.board.feed import BoardFeed
from streams.board.prometheus_api import PrometheusApi
from streams.board.screens import SCREEN_IDS
from streams.board.views import BoardView, UnknownTeam, board_view

STATIC_FILES = {"board.js": "text/javascript", "board.css": "text/css"}
KEEPALIVE_SECONDS = 5.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "style-src-attr 'unsafe-inline'; connect-src 'self'",  # bar widths are style attributes
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class BoardOptions:
    prometheus_url: str
    job: str = "kpimon"
    rotate_seconds: float = 15.0
    stale_after_seconds: float = 10.0
    poll_interval_seconds: float = 0.25
    token: str | None = None


class BoardServer:
    def __init__(self, config: KpimonConfig, options: BoardOptions) -> None:
        self._config = config
        self._options = options
        self._feeds: dict[str, BoardFeed] = {}
        self._session: aiohttp.ClientSession | None = None
        self._streams: set[asyncio.Task[object]] = set()  # open event streams, ended at shutdown

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._root)
        app.router.add_get("/board", self._page)
        app.router.add_get("/board/static/{name}", self._static)
        app.router.add_get("/board/api/events", self._events)
        app.router.add_get("/board/{team}", self._page)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._end_streams)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession()

    async def _end_streams(self, app: web.Application) -> None:
        """Event streams never end by themselves: end them, so that a restart does not wait for them."""
        for task in self._streams:
            task.cancel()

    async def _stop(self, app: web.Application) -> None:
        for feed in self._feeds.values():
            await feed.close()
        if self._session is not None:
            await self._session.close()

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        expected = self._options.token
        if expected is not None and not request.path.startswith("/board/static/"):  # code and style, no data
            given = request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise web.HTTPForbidden(text="this board needs its token: open the URL with ?token=<token>\n")
        response = await handler(request)
        if not response.prepared:  # the event stream sent its headers already
            response.headers.update(SECURITY_HEADERS)
        return response

    def _view(self, team: str | None) -> BoardView:
        try:
            return board_view(self._config, team)
        except UnknownTeam as exc:
            raise web.HTTPNotFound(text=f"{exc}\n") from None

    async def _root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(request.rel_url.with_path("/board"))

    async def _page(self, request: web.Request) -> web.Response:
        view = self._view(request.match_info.get("team"))
        settings = {
            "team": view.team,
            "title": view.title,
            "timezone": view.timezone,
            "rotate": self._options.rotate_seconds,
            "staleAfter": self._options.stale_after_seconds,
            "screens": list(SCREEN_IDS),
        }
        page = resources.files("streams.board").joinpath("static/board.html").read_text(encoding="utf-8")
        page = page.replace("{{title}}", html.escape(f"kpimon board: {view.title}"))
        page = page.replace("{{settings}}", html.escape(json.dumps(settings), quote=True))
        return web.Response(text=page, content_type="text/html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        body = resources.files("streams.board").joinpath(f"static/{name}").read_bytes()
        return web.Response(body=body, content_type=STATIC_FILES[name])

    def _feed(self, view: BoardView) -> BoardFeed:
        if view.key not in self._feeds:
            assert self._session is not None
            prometheus = PrometheusApi(self._session, self._options.prometheus_url)
            poll = self._options.poll_interval_seconds
            self._feeds[view.key] = BoardFeed(view, self._config, prometheus, self._options.job, poll)
        return self._feeds[view.key]

    async def _events(self, request: web.Request) -> web.StreamResponse:
        feed = self._feed(self._view(request.query.get("team") or None))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **SECURITY_HEADERS})
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")  # the page's EventSource reconnects after 1 s
        queue = feed.subscribe()
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            while True:
                # the server's time, so that ages are right on a TV whose clock is off
                await response.write(f"event: clock\ndata: {time.time():.3f}\n\n".encode())
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
                except TimeoutError:
                    continue
                await response.write(b"data: " + message + b"\n\n")
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass
        finally:
            feed.unsubscribe(queue)
            self._streams.discard(task)
        return response


def run_board(config: KpimonConfig, options: BoardOptions, host: str, port: int) -> None:
    """Serve the board until interrupted; no access log (request lines would carry the token)."""
    with contextlib.suppress(KeyboardInterrupt):
        app = BoardServer(config, options).app()
        web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=2)
