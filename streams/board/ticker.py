"""The live ticker: deals won, told from the rise of each rep's wins today between two refreshes. Pure.

Deal ids are not labels (docs/metrics.md), so a win is seen as a rep's ``deals_won`` for today
going up, and its amount as the rise of the rep's revenue today. Two wins of one rep between two
refreshes make one entry ("2 deals"). A fall (a new day in the team's time zone, a deal moved to
another rep, a loss replacing a win) tells nothing and only resets the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

RepKey = tuple[str, str]  # (team, rep)


@dataclass(frozen=True)
class Win:
    at: float
    team: str
    rep: str
    deals: int
    amount: float
    earlier: bool = False  # found at the board's first reading: won earlier today, at a time unknown


def new_wins(
    before: Mapping[RepKey, tuple[float, float]] | None, now_values: Mapping[RepKey, tuple[float, float]], at: float
) -> list[Win]:
    """The wins between two readings of (deals won today, revenue today) per rep, biggest first.

    Without a reading before (the board just started), each rep's wins so far today, marked ``earlier``.
    """
    wins = []
    for key, (deals, revenue) in now_values.items():
        deals_before, revenue_before = (before or {}).get(key, (0.0, 0.0))
        if deals > deals_before:
            team, rep = key
            gained = int(deals - deals_before)
            wins.append(Win(at, team, rep, gained, max(revenue - revenue_before, 0.0), earlier=before is None))
    return sorted(wins, key=lambda win: (-win.amount, win.rep))
