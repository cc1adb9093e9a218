"""streams.readout.visitor_query_cache: the queries of visitor_queries, their keys kept while the ranges hold."""

from __future__ import annotations

import pytest

from schemas.config import KpimonConfig, TeamConfig
from schemas.scopes import Scope
from streams.readout.visitor_keys import VisitorQuery, visitor_queries
from streams.readout.visitor_query_cache import VisitorQueryCache

CONFIG = KpimonConfig(timezone="Europe/Berlin", teams={"apac": TeamConfig(timezone="Asia/Kathmandu")})
SCOPES = [Scope(), Scope(channel="ads"), Scope(campaign="spring|sale")]
NOW = 1_711_839_540  # 2024-03-30T22:59Z: a minute before midnight in Berlin, the night the clocks spring forward


def built(cache: VisitorQueryCache, scopes: list[Scope], now: int) -> list[VisitorQuery]:
    queries: list[VisitorQuery] = []
    steps = sum(1 for _ in cache.build(scopes, now, queries))
    assert steps == len(scopes)  # one scope per step
    return queries


@pytest.mark.parametrize("later", [0, 30, 60, 900, 3_600, 86_400, 40 * 86_400])
def test_the_queries_are_visitor_queries_whatever_was_kept_before(later: int) -> None:
    cache = VisitorQueryCache("kp", CONFIG)
    assert built(cache, SCOPES, NOW) == visitor_queries("kp", SCOPES, NOW, CONFIG)
    assert built(cache, SCOPES[1:], NOW + later) == visitor_queries("kp", SCOPES[1:], NOW + later, CONFIG)
    assert built(cache, SCOPES, NOW + later) == visitor_queries("kp", SCOPES, NOW + later, CONFIG)


def test_unchanged_ranges_reuse_their_keys() -> None:
    cache = VisitorQueryCache("kp", CONFIG)
    first, again = built(cache, SCOPES, NOW), built(cache, SCOPES, NOW + 10)  # the same minute
    assert all(a.keys is b.keys for a, b in zip(first, again, strict=True))
