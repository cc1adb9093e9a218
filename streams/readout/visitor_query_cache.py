"""``visitor_keys.visitor_queries`` with each window's keys kept while its range holds. Pure.

Counting the unique visitors of 250 channel and campaign scopes needs about 90,000 key names
(a 7-day window alone is 168 hour keys); building them took longer than the PFCOUNTs. A window's
keys change only when its range moves (the 1-hour window every minute, the others less often),
so they are kept per scope and window with the range they were made for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from schemas.catalog import WINDOW_NAMES, WindowName
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.facts import scope_timezone
from streams.core.windows import window_bucket_range
from streams.readout.visitor_keys import VisitorQuery, window_keys


class VisitorQueryCache:
    def __init__(self, app_id: str, config: KpimonConfig) -> None:
        self._app_id = app_id
        self._config = config
        self._keys: dict[tuple[Scope, WindowName], tuple[tuple[int, int], tuple[str, ...]]] = {}

    def build(self, scopes: Iterable[Scope], now: int, into: list[VisitorQuery]) -> Iterator[None]:
        """Append to ``into`` what ``visitor_queries(app_id, scopes, now, config)`` returns, one scope per step."""
        ranges: dict[str, dict[WindowName, tuple[int, int]]] = {}  # zone -> window -> its first and last bucket
        wanted: set[Scope] = set()
        for scope in scopes:
            wanted.add(scope)
            tz = scope_timezone(scope, self._config)
            spans = ranges.get(tz.key)
            if spans is None:
                spans = ranges[tz.key] = {w: window_bucket_range(w, now, tz)[1:] for w in WINDOW_NAMES}
            for window in WINDOW_NAMES:
                kept = self._keys.get((scope, window))
                if kept is None or kept[0] != spans[window]:
                    kept = self._keys[scope, window] = (
                        spans[window],
                        window_keys(self._app_id, scope, window, now, tz),
                    )
                into.append(VisitorQuery(scope, window, kept[1]))
            yield
        for gone in [key for key in self._keys if key[0] not in wanted]:
            del self._keys[gone]
