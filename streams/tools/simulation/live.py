"""The live demo world: events at a target rate, the funnel compressed to minutes. Pure.

Model of activity. Every kind of *root* event is a Poisson stream with a natural
rate (per hour, at an average working hour's intensity) and a clock:

* each rep calls (~6/h; 35% connected, 45% no answer, 20% voicemail; talk time
  lognormal 2-6 min when connected, under a minute otherwise), emails (~8/h,
  ~19% get a reply later), books meetings (~0.6/h, ~83% held later) and completes
  demos (~0.3/h) from 08:00 to 18:00 of the team's time zone on weekdays, with
  peaks late in the morning and in the middle of the afternoon;
* marketing publishes content and social posts, launches campaigns (~3 a week)
  and sends email campaigns (opens, clicks, bounces and unsubscribes follow) in
  the company's working hours; web sessions and leads come all day, busier from
  07:00 to 23:00 (~5% flagged as bots); spend is recorded per paid channel, and for
  sales (``kind: sales``), about once a day each, ~15% of it corrected later (``replaces``);
* campaigns come from a small fixed set (``DEMO_CAMPAIGNS``, one or two per paid
  channel), so the campaign series stay few however long the demo runs: a launch
  is a new wave of one of them, an email campaign one of the email ones, and a lead,
  a web session or spend on a paid channel names one of that channel's campaigns
  (leads from organic search and referrals name none);
* a lead runs down the funnel: ~40% become MQL, ~50% of those SQL (owned by a
  rep of the lead's team), ~60% of those an opportunity that moves through the
  stages and is won (~30%) or lost; the opportunity and its win name the lead's
  channel and campaign. Funnel time is compressed to minutes so a
  demo closes deals within the hour. Follow-ups are scheduled when their root
  happens, always later in event time, and kept until they are due.

Off hours (nights, weekends) a clock runs at ``OFF_HOURS_FLOOR`` of an average
working hour, so every rep shows some activity at any time of day.

Rate. The natural rates only set the *mix*. For each minute of event time all
streams are scaled by one factor so that roots, their expected follow-ups and
injected duplicates add up to ``rate`` events per second: the total is flat and
the clocks decide who is busy (reps in business hours get most of it). Live,
event time is wall time, so ``--rate R`` gives R events per second. Follow-ups
build up after a start, so a young simulation counts only those already due
(``events_per_root``). Injected duplicates keep their original ``occurred_at``.

Ids. Events and entities of a simulation are named after its seed and the moment its
event time began (``sim-1-20261207T104112345-17``, ``lead-1-20261207T104112345-5``):
two runs never share an id, so a second demo run counts its own events, not nothing.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import time
from collections import deque
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from schemas.config import KpimonConfig
from streams.tools.simulation.model import (
    BOUNCE_RATE,
    CHURN_RATE,
    CLICK_PER_OPEN,
    CONTRACTION_RATE,
    EXPANSION_RATE,
    JOURNEY_RATE,
    JOURNEY_TOUCHES,
    MEETING_HELD_PROBABILITY,
    MQL_RATE,
    OPEN_RATE,
    OPPORTUNITY_RATE,
    RECIPIENTS,
    REPLY_PROBABILITY,
    RETURN_RATE,
    SOURCE,
    SPEND_CORRECTION_RATE,
    SQL_RATE,
    STAGES,
    SURVEY_AGAIN_RATE,
    SURVEY_RATES,
    UNSUBSCRIBE_PER_OPEN,
    WIN_RATE,
    EventDict,
    Out,
    SimulatedEvent,
    clock_factor,
    rfc3339,
    season_factor,
    topic_kind,
)
from streams.tools.simulation.world import World

DEFAULT_RATE = 10.0
RATE_BUCKET_SECONDS = 60.0
RECENT_EVENTS_KEPT = 1000
MEAN_DELAY_MINUTES = {"reply": 20, "meeting": 40, "mql": 5, "sql": 10, "opportunity": 10, "stage": 10, "close": 15}
MEAN_DELAY_MINUTES["correction"] = 120  # a spend record corrected
MEAN_DELAY_MINUTES["touch"] = 3  # between the touches of a lead's person
MEAN_DELAY_MINUTES |= {"expansion": 15, "churn": 30, "return": 20, "survey": 10}  # after a subscription starts

# opened, in the first stage, its later stage changes (all of them if won), closed
_OPPORTUNITY_EVENTS = 2 + WIN_RATE * (len(STAGES) - 1) + (1 - WIN_RATE) * (len(STAGES) - 1) / 2 + 1
_ENGAGEMENTS_PER_RECIPIENT = BOUNCE_RATE + OPEN_RATE * (1 + CLICK_PER_OPEN + UNSUBSCRIBE_PER_OPEN)
FOLLOW_UPS = {  # root kind: (expected follow-up events per root, their typical delay in minutes)
    "email.sent": (REPLY_PROBABILITY, MEAN_DELAY_MINUTES["reply"]),
    "meeting.booked": (MEETING_HELD_PROBABILITY, MEAN_DELAY_MINUTES["meeting"]),
    "lead.created": (
        MQL_RATE * (1 + SQL_RATE * (1 + OPPORTUNITY_RATE * _OPPORTUNITY_EVENTS))
        + JOURNEY_RATE * sum(JOURNEY_TOUCHES) / 2,
        20,
    ),
    "email_campaign.sent": (sum(RECIPIENTS) / 2 * _ENGAGEMENTS_PER_RECIPIENT, MEAN_DELAY_MINUTES["reply"]),
    "spend.recorded": (SPEND_CORRECTION_RATE, MEAN_DELAY_MINUTES["correction"]),
    "subscription.started": (
        EXPANSION_RATE
        + CONTRACTION_RATE
        + CHURN_RATE * (1 + RETURN_RATE)
        + sum(SURVEY_RATES.values()) * (1 + SURVEY_AGAIN_RATE),
        MEAN_DELAY_MINUTES["churn"],
    ),
}


def events_per_root(kind: str, age: float) -> float:
    """A root plus the follow-ups expected by now from roots of a simulation ``age`` seconds old."""
    follow_ups, minutes = FOLLOW_UPS.get(kind, (0.0, 1))
    return 1 + follow_ups * (1 - math.exp(-age / (60 * minutes)))


def run_tag(seed: int, start: float) -> str:
    """``1-20261207T104112345``: the seed and the millisecond a live simulation's event time began."""
    milliseconds = math.floor(start * 1000) % 1000
    return f"{seed}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(math.floor(start)))}{milliseconds:03d}"


class Simulation(World):
    """Deterministic event generator: equal config, seed, rate and calls give equal events."""

    def __init__(self, config: KpimonConfig, seed: int, *, rate: float = DEFAULT_RATE, duplicate_rate: float = 0.0):
        if rate <= 0 or not 0 <= duplicate_rate < 1:
            raise ValueError("rate must be > 0 and duplicate_rate in [0, 1)")
        super().__init__(config)
        self.seed, self.rate, self.duplicate_rate = seed, rate, duplicate_rate
        self.injected_duplicates = 0
        self._rng = random.Random(seed)
        self._emitted = self._serial = 0
        self._pending: list[tuple[float, int, EventDict]] = []  # scheduled follow-ups: (due, serial, fields)
        self._recent: deque[EventDict] = deque(maxlen=RECENT_EVENTS_KEPT)
        self._plan: tuple[int, float, list[float]] | None = None  # (bucket, roots per second, cumulative weights)
        self._origin = math.inf  # where event time began: follow-ups build up from there
        self._tag = ""  # run_tag() of the origin, in every id

    def events_between(self, start: float, end: float) -> list[SimulatedEvent]:
        """Events with ``occurred_at`` in [start, end) (duplicates keep their original time), in time order."""
        out: Out = []
        if end <= start:
            return out
        if start < self._origin:
            self._origin, self._tag = start, self._tag or run_tag(self.seed, start)
        moment = start
        while moment < end:
            bucket_end = min(end, (math.floor(moment / RATE_BUCKET_SECONDS) + 1) * RATE_BUCKET_SECONDS)
            roots_per_second, cumulative = self._plan_at(moment)
            while (moment := moment + self._rng.expovariate(roots_per_second)) < bucket_end:
                self._release_due(start, moment, out)
                picked = bisect.bisect_right(cumulative, self._rng.random() * cumulative[-1])
                stream = self._streams[picked]
                self._roots[stream.kind](stream, moment, out)
            moment = bucket_end
        self._release_due(start, end, out)
        return out

    def _plan_at(self, moment: float) -> tuple[float, list[float]]:
        """Roots per second and the streams' cumulative weights in ``moment``'s bucket of event time."""
        bucket = math.floor(moment / RATE_BUCKET_SECONDS)
        if self._plan is None or self._plan[0] != bucket:
            utc = datetime.fromtimestamp(bucket * RATE_BUCKET_SECONDS, UTC)
            local = {zone: utc.astimezone(ZoneInfo(zone)) for zone in {s.zone for s in self._streams}}
            weights = [
                s.per_hour * clock_factor(s.clock, local[s.zone]) * season_factor(s.kind, local[s.zone])
                for s in self._streams
            ]
            age = bucket * RATE_BUCKET_SECONDS - self._origin
            events = sum(w * events_per_root(s.kind, age) for w, s in zip(weights, self._streams, strict=True))
            roots_per_second = self.rate * sum(weights) / (events * (1 + self.duplicate_rate))
            self._plan = (bucket, roots_per_second, list(itertools.accumulate(weights)))
        return self._plan[1], self._plan[2]

    # -- emitting, scheduling, naming ----------------------------------------------------------------------------------

    def _emit(self, moment: float, fields: EventDict, out: Out) -> str:
        event_id = f"sim-{self._tag}-{self._emitted}"
        event = {"event_id": event_id, "occurred_at": rfc3339(moment), "source": SOURCE}
        event.update((name, value) for name, value in fields.items() if value is not None)
        self._emitted += 1
        out.append((topic_kind(event), event))
        self._recent.append(event)
        if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
            again = dict(self._rng.choice(self._recent))
            out.append((topic_kind(again), again))
            self.injected_duplicates += 1
        return event_id

    def _schedule(self, due: float, fields: EventDict) -> None:
        self._serial += 1
        heapq.heappush(self._pending, (due, self._serial, fields))

    def _release_due(self, start: float, until: float, out: Out) -> None:
        while self._pending and self._pending[0][0] < until:
            due, _, fields = heapq.heappop(self._pending)
            self._emit(max(due, start), fields, out)

    def _after(self, moment: float, step: str) -> float:
        return moment + 1.0 + self._rng.expovariate(1 / (60.0 * MEAN_DELAY_MINUTES[step]))

    def _new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self._tag}-{self._serial}"
