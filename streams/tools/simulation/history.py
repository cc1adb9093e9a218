"""The demo's past: weeks of events at a realistic daily volume, a pure function of the world's time slots.

``kpimon simulate --history 35d`` first produces the events of the last 35 days from this
world, as fast as the broker takes them, then goes on live. The live part keeps sending this
world's events when they are due (deals opened weeks ago close today and in the coming days),
on top of the live stream at ``--rate`` (``live.py``).

Volume. ``calls_per_day`` (``--history-calls``, default 20) is what a rep logs on an average
working day; every other kind keeps its natural proportion to calls (``REP_ACTIVITY_PER_HOUR``,
``MARKETING_PER_HOUR``): 20 calls come with ~27 emails, 2 meetings and 1 demo per rep, and
the company gets ~640 web sessions and ~38 leads a day. Spend is money, not volume: about one
record per channel and day whatever the volume. Reps and marketing work 08:00-18:00 on
weekdays of their zone (no off-hours activity in the past); web sessions and leads come all
day. With the 12 demo reps that is ~1,300 events a day, ~45,000 for 35 days.

Seasons. Self-serve signups follow the months of the year (``season_factor`` in ``model.py``):
January has ``SEASON_SWING`` (1.5) times the signups of July, the other months lie on a cosine
between them, and the year's total is what the signups' natural rate gives. A year of history
shows the swing; the 35 days of the demo hardly do.

Funnel time. Each step of a follow-up takes a uniform draw from ``HISTORY_DELAY_HOURS``: a
lead becomes an MQL within half a day to 4 days, an SQL 1 to 5 days later, an opportunity 1 to
4 days after that, which enters the first stage (discovery) a second after its opening, moves
on 2 to 8 days later per stage and closes 2 to 10 days after its last stage change. Leads from
past weeks convert, and deals opened weeks ago close in the last days and today.

Purity and ids. Event time is cut into UTC days; every (day, stream) has its own random
generator, seeded by the seed, the day and the stream's name, and names every event and
entity it makes after them: ``sim-1-20261207-emea-anna.call-3``, ``lead-1-20261207-lead-5``. A
follow-up comes at most ``MAX_FOLLOW_UP_SECONDS`` of its kind after its root's day, so the
events with ``occurred_at`` in [start, end) are a pure function of (config, seed,
calls_per_day, start, end): every run makes the same ones with the same ids, and the events of
[a, b) and of [b, c) are together those of [a, c). There is no warm-up either: roots before
``start`` are generated too, for their follow-ups.

Why the resume point. The worker remembers event ids for 8 days of event time only
(docs/architecture.md, Known limits): a second copy of a call 20 days old would be counted
again. So a second ``--history`` run does not produce again what the topics hold: it reads the
time of the newest event of its seed on the topics (``simulated_time``) and produces the
history from just after it (``history_start``). Entity events (deals, leads, spend) would be
safe anyway (their states keep their event ids); activity events need this.
"""

from __future__ import annotations

import bisect
import math
import random
import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from schemas.config import KpimonConfig
from streams.tools.simulation.model import (
    JOURNEY_TOUCHES,
    PEAK_WORK_FACTOR,
    REP_ACTIVITY_PER_HOUR,
    SEASON_AMPLITUDE,
    SEASONAL_KINDS,
    SOURCE,
    STAGE_ENTRY_SECONDS,
    STAGES,
    UNSUBSCRIBE_AFTER_OPEN_SECONDS,
    WORKDAY_HOURS,
    EventDict,
    Out,
    SimulatedEvent,
    Stream,
    clock_factor,
    rfc3339,
    season_factor,
    topic_kind,
    working_hour_factor,
)
from streams.tools.simulation.world import World

DAY = 86_400
DEFAULT_HISTORY_CALLS = 20.0
NATURAL_CALLS_PER_WORKING_DAY = REP_ACTIVITY_PER_HOUR["call.logged"] * (WORKDAY_HOURS[1] - WORKDAY_HOURS[0])
UNSCALED_KINDS = frozenset({"spend.recorded"})  # money per day: as much whatever the volume
PEAK_FACTOR = {"work": PEAK_WORK_FACTOR, "waking": 1.0, "always": 1.0}
RESUME_AFTER_SECONDS = 0.001  # occurred_at has milliseconds: resume with the next one

HISTORY_DELAY_HOURS = {  # step: (shortest, longest) in hours, drawn uniformly
    "reply": (0.25, 24.0),  # an email replied to; a campaign's email opened
    "meeting": (2.0, 120.0),  # a booked meeting held
    "correction": (2.0, 48.0),  # a spend record corrected
    "touch": (1.0, 72.0),  # between the touches of a lead's person, and from the last one to the lead
    "mql": (12.0, 96.0),
    "sql": (24.0, 120.0),
    "opportunity": (24.0, 96.0),
    "stage": (48.0, 192.0),
    "close": (48.0, 240.0),
    "expansion": (48.0, 360.0),  # a subscription's seats changed
    "churn": (72.0, 480.0),  # after its start, or after its change
    "return": (24.0, 240.0),  # a churned account subscribes again
    "survey": (24.0, 240.0),  # an account answers a survey
}


def _longest(*steps: str) -> float:
    return 3600 * sum(HISTORY_DELAY_HOURS[step][1] for step in steps)


MAX_FOLLOW_UP_SECONDS = {  # root kind: the latest a follow-up can come after its root
    "email.sent": _longest("reply"),
    "meeting.booked": _longest("meeting"),
    "spend.recorded": _longest("correction"),
    "email_campaign.sent": _longest("reply") + UNSUBSCRIBE_AFTER_OPEN_SECONDS[1],
    "subscription.started": max(_longest("expansion", "churn", "return"), _longest("survey", "reply")),
    "lead.created": _longest(
        *["touch"] * JOURNEY_TOUCHES[1], "mql", "sql", "opportunity", *["stage"] * (len(STAGES) - 1), "close"
    )
    + STAGE_ENTRY_SECONDS,
}


def history_factor(clock: str, moment: datetime) -> float:
    """A clock's intensity at a local ``moment`` in the past: working hours without the live demo's night floor."""
    return working_hour_factor(moment) if clock == "work" else clock_factor(clock, moment)


def day_label(day: int) -> str:
    """``20261207``: the UTC day ``day`` (days since 1970-01-01), as in the history's ids."""
    return time.strftime("%Y%m%d", time.gmtime(day * DAY))


class History(World):
    """The past of the demo world: ``events_between`` is a pure function of its arguments and the constructor's."""

    def __init__(self, config: KpimonConfig, seed: int, *, calls_per_day: float = DEFAULT_HISTORY_CALLS) -> None:
        if not calls_per_day > 0:
            raise ValueError(f"calls per rep and working day must be > 0, got {calls_per_day}")
        super().__init__(config)
        self.seed, self.calls_per_day = seed, calls_per_day
        self._rng = random.Random(seed)
        self._zones = {stream.zone: ZoneInfo(stream.zone) for stream in self._streams}
        # (stream, day) -> times, events (in time order) and the end of the last moment any of them can have
        self._days: dict[tuple[str, int], tuple[list[float], list[SimulatedEvent], float]] = {}
        self._tag, self._count = "", 0
        self._made: list[tuple[float, SimulatedEvent]] = []

    def per_second(self, stream: Stream) -> float:
        """Roots per second of ``stream`` at an average working hour's intensity."""
        scale = 1.0 if stream.kind in UNSCALED_KINDS else self.calls_per_day / NATURAL_CALLS_PER_WORKING_DAY
        return stream.per_hour * scale / 3600

    def events_between(self, start: float, end: float) -> list[SimulatedEvent]:
        """This world's events with ``occurred_at`` in [start, end), in time order."""
        if end <= start:
            return []
        picked: list[tuple[float, SimulatedEvent]] = []
        last_day = math.ceil(end / DAY) - 1
        for stream in self._streams:
            first_day = math.floor((start - MAX_FOLLOW_UP_SECONDS.get(stream.kind, 0.0)) / DAY)
            for day in range(first_day, last_day + 1):
                times, events, _ = self._day(stream, day)
                low, high = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
                picked.extend(zip(times[low:high], events[low:high], strict=True))
        picked.sort(key=lambda item: item[0])  # stable: ties keep the streams' order
        for key in [key for key, (_, _, horizon) in self._days.items() if horizon <= start]:
            del self._days[key]  # nothing of it is at or after start: later windows never need it
        return [event for _, event in picked]

    def _day(self, stream: Stream, day: int) -> tuple[list[float], list[SimulatedEvent], float]:
        key = (stream.name, day)
        if key not in self._days:
            made = sorted(self._generate(stream, day), key=lambda item: item[0])
            horizon = (day + 1) * DAY + MAX_FOLLOW_UP_SECONDS.get(stream.kind, 0.0)
            self._days[key] = ([moment for moment, _ in made], [event for _, event in made], horizon)
        return self._days[key]

    def _generate(self, stream: Stream, day: int) -> list[tuple[float, SimulatedEvent]]:
        """The roots of ``stream`` on ``day`` (Poisson, thinned by its clock and season) and all their follow-ups."""
        label = day_label(day)
        self._rng = random.Random(f"{self.seed}/{label}/{stream.name}")
        self._tag, self._count, self._made = f"{self.seed}-{label}-{stream.name}", 0, []
        peak = PEAK_FACTOR[stream.clock] * (1 + SEASON_AMPLITUDE if stream.kind in SEASONAL_KINDS else 1.0)
        candidates_per_second, zone = self.per_second(stream) * peak, self._zones[stream.zone]
        moment, end = float(day * DAY), float((day + 1) * DAY)
        while (moment := moment + self._rng.expovariate(candidates_per_second)) < end:
            local = datetime.fromtimestamp(moment, zone)
            if self._rng.random() * peak < history_factor(stream.clock, local) * season_factor(stream.kind, local):
                self._roots[stream.kind](stream, moment, [])  # the events go to _made, with their exact moments
        return self._made

    # -- World's hooks: every event goes to ``_made`` with its exact moment, named after the (day, stream) -----------

    def _emit(self, moment: float, fields: EventDict, out: Out) -> str:
        event_id = f"sim-{self._tag}-{self._count}"
        self._count += 1
        event = {"event_id": event_id, "occurred_at": rfc3339(moment), "source": SOURCE}
        event.update((name, value) for name, value in fields.items() if value is not None)
        self._made.append((moment, (topic_kind(event), event)))
        return event_id

    def _schedule(self, due: float, fields: EventDict) -> None:
        self._emit(due, fields, [])

    def _after(self, moment: float, step: str) -> float:
        shortest, longest = HISTORY_DELAY_HOURS[step]
        return moment + 3600 * self._rng.uniform(shortest, longest)

    def _new_id(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}-{self._tag}-{self._count}"


def history_start(now: float, seconds: float, produced_until: float | None) -> float:
    """Where the history to produce begins: ``seconds`` before ``now``, or just after what the topics hold of it.

    ``produced_until``: the newest event time of this seed on the topics (``simulated_time``), if any.
    The result is ``now`` when there is nothing left to produce.
    """
    start = now - seconds
    if produced_until is not None and produced_until >= start:
        start = produced_until + RESUME_AFTER_SECONDS
    return min(start, now)


def simulated_time(value: bytes, seed: int) -> float | None:
    """When the event of a Kafka message happened, if the simulator made it with ``seed`` (history or live)."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("source") != SOURCE:
        return None
    if not re.match(rf"sim-{seed}-\d{{8}}(T\d{{9}})?-", str(event.get("event_id", ""))):
        return None  # another seed's, or of a simulator before the history (sim-<seed>-<n>)
    try:
        moment = datetime.fromisoformat(str(event["occurred_at"]))
    except (KeyError, ValueError):
        return None
    return moment.timestamp() if moment.tzinfo is not None else None
