"""The board server's routes and guard, without Prometheus (pages and refusals need none)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from streams.board.server import BoardOptions, BoardServer

CONFIG = KpimonConfig(
    teams={"emea": TeamConfig(timezone="Europe/Berlin", name="EMEA")},
    reps={"anna": RepConfig(team="emea", name="Anna")},
)
TOKEN = "tv-token-1"
pytestmark = pytest.mark.asyncio(loop_scope="session")  # the loop of the client fixture
Client = TestClient[object, object]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    options = BoardOptions(prometheus_url="http://127.0.0.1:9", token=TOKEN)
    async with TestClient(TestServer(BoardServer(CONFIG, options).app())) as test_client:
        yield test_client


async def test_a_teams_page_names_its_zone_and_carries_the_security_headers(client: Client) -> None:
    response = await client.get("/board/emea", params={"token": TOKEN})
    assert response.status == 200
    page = await response.text()
    assert "kpimon board: EMEA" in page and "Europe/Berlin" in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/board", "/board/emea", "/board/api/events"])
@pytest.mark.parametrize("token", [None, "", "tv-token-2", TOKEN + "x"])
async def test_every_data_route_needs_the_token(client: Client, path: str, token: str | None) -> None:
    response = await client.get(path, params={} if token is None else {"token": token})
    assert response.status == 403
    assert TOKEN not in await response.text()


async def test_static_files_need_no_token_and_nothing_else_is_served(client: Client) -> None:
    assert (await client.get("/board/static/board.js")).status == 200
    assert (await client.get("/board/static/board.css")).headers["Content-Type"].startswith("text/css")
    assert (await client.get("/board/static/board.html")).status == 404
    assert (await client.get("/board/static/..%2Fserver.py")).status == 404


async def test_an_unknown_team_says_which_teams_there_are(client: Client) -> None:
    for path, params in (("/board/nope", {}), ("/board/api/events", {"team": "nope"})):
        response = await client.get(path, params={"token": TOKEN, **params})
        assert response.status == 404
        assert await response.text() == "no team 'nope' in the config (teams: emea)\n"
