"""Realistic, deterministic demo events for ``kpimon simulate``.

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
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import itertools
import math
import random
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaProducer

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import routing_key_of
from streams.worker.settings import Settings
from streams.worker.topics import ensure_topics

TopicKind = Literal["crm", "marketing"]
EventDict = dict[str, Any]
SimulatedEvent = tuple[TopicKind, EventDict]
Out = list[SimulatedEvent]

SOURCE = "simulator"
DEFAULT_RATE = 10.0
OFF_HOURS_FLOOR = 0.25
WORKDAY_HOURS, WAKING_HOURS, WAKING_NIGHT_FACTOR = (8.0, 18.0), (7.0, 23.0), 0.4
RATE_BUCKET_SECONDS = 60.0
RECENT_EVENTS_KEPT = 1000

DEMO_TEAMS = {"emea": "Europe/Berlin", "amer": "America/New_York", "apac": "Asia/Singapore"}
DEMO_REP_NAMES = {"emea": "anna lukas sofia jan", "amer": "mike olivia james emma", "apac": "wei priya kenji mei"}
GENERIC_REP_NAMES = "rep1 rep2 rep3 rep4"

REP_ACTIVITY_PER_HOUR = {"call.logged": 6.0, "email.sent": 8.0, "meeting.booked": 0.6, "demo.completed": 0.3}
MARKETING_PER_HOUR = {  # kind: (natural rate, clock)
    "web.session": (100.0, "waking"),
    "lead.created": (6.0, "waking"),
    "content.published": (1.0, "work"),
    "social.posted": (1.0, "work"),
    "campaign.launched": (0.06, "work"),
    "email_campaign.sent": (0.15, "work"),
    "spend.recorded": (5 / 24, "always"),
}
MARKETING_TYPES = {*MARKETING_PER_HOUR, "email.opened", "email.clicked", "email.bounced", "email.unsubscribed"}
MARKETING_TYPES -= {"lead.created"}  # leads live in the CRM

CALL_OUTCOMES, CALL_OUTCOME_WEIGHTS = ("connected", "no_answer", "voicemail"), (0.35, 0.45, 0.20)
RING_SECONDS = (15, 60)  # a call that reached nobody or a voicemail box
REPLY_PROBABILITY, MEETING_HELD_PROBABILITY = 1.5 / 8.0, 0.5 / 0.6
LEAD_CHANNELS = ("organic_search", "paid_search", "social", "email", "referral", "events")
LEAD_CHANNEL_WEIGHTS = (0.30, 0.20, 0.15, 0.10, 0.15, 0.10)
DAILY_SPEND = {"paid_search": 800.0, "social": 500.0, "email": 100.0, "events": 1500.0}
PAID_CHANNELS = tuple(DAILY_SPEND)
SALES_CHANNEL, DAILY_SALES_SPEND = "sales", 3000.0  # spend of kind sales (salaries, tools): in the CAC only
SPEND_CORRECTION_RATE, BOT_SESSION_RATE = 0.15, 0.05
DEMO_CAMPAIGNS = (  # (campaign_id, channel)
    ("search-brand", "paid_search"),
    ("search-competitors", "paid_search"),
    ("social-retargeting", "social"),
    ("newsletter", "email"),
    ("webinar-invites", "email"),
    ("trade-show", "events"),
)
CONTENT_CHANNELS = {"content.published": ("blog", "video", "webinar"), "social.posted": ("linkedin", "x", "youtube")}
MQL_RATE, SQL_RATE, OPPORTUNITY_RATE, WIN_RATE = 0.4, 0.5, 0.6, 0.3
STAGES = ("discovery", "proposal", "negotiation")
LOSS_REASONS = ("price too high", "chose a competitor", "no decision", "bad timing", "no budget", "missing features")
MEAN_DELAY_MINUTES = {"reply": 20, "meeting": 40, "mql": 5, "sql": 10, "opportunity": 10, "stage": 10, "close": 15}
MEAN_DELAY_MINUTES["correction"] = 120  # a spend record corrected
RECIPIENTS = (100, 600)
BOUNCE_RATE, OPEN_RATE, CLICK_PER_OPEN, UNSUBSCRIBE_PER_OPEN = 0.015, 0.25, 0.12, 0.01
CONTACTS = 50_000  # the people email campaigns go to, and leads come from: contact-1 .. contact-49999
# A lead's person first visits the site or clicks an email (its touches, for attribution) in JOURNEY_RATE of
# the leads, 1 to 3 times, ~3 minutes apart; EMAIL_TOUCH_SHARE of those touches are email clicks.
JOURNEY_RATE, JOURNEY_TOUCHES, EMAIL_TOUCH_SHARE = 0.6, (1, 3), 0.3
MEAN_DELAY_MINUTES["touch"] = 3

_OPPORTUNITY_EVENTS = 1 + WIN_RATE * (len(STAGES) - 1) + (1 - WIN_RATE) * (len(STAGES) - 1) / 2 + 1
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
}


def events_per_root(kind: str, age: float) -> float:
    """A root plus the follow-ups expected by now from roots of a simulation ``age`` seconds old."""
    follow_ups, minutes = FOLLOW_UPS.get(kind, (0.0, 1))
    return 1 + follow_ups * (1 - math.exp(-age / (60 * minutes)))


def _workday_shape(hour: float) -> float:
    """Unnormalised intensity in working hours: a late-morning and a mid-afternoon peak."""
    return 0.5 + math.exp(-(((hour - 10.75) / 1.25) ** 2)) + 0.8 * math.exp(-(((hour - 15.0) / 1.25) ** 2))


_WORKDAY_MEAN = sum(_workday_shape(WORKDAY_HOURS[0] + (step + 0.5) / 10) for step in range(100)) / 100


def clock_factor(clock: str, moment: datetime) -> float:
    """Intensity relative to an average working hour at a local ``moment``."""
    hour = moment.hour + moment.minute / 60
    if clock == "waking":
        return 1.0 if WAKING_HOURS[0] <= hour < WAKING_HOURS[1] else WAKING_NIGHT_FACTOR
    if clock == "work":
        if moment.weekday() >= 5 or not WORKDAY_HOURS[0] <= hour < WORKDAY_HOURS[1]:
            return OFF_HOURS_FLOOR
        return max(OFF_HOURS_FLOOR, _workday_shape(hour) / _WORKDAY_MEAN)
    return 1.0


def rfc3339(seconds: float) -> str:
    """UTC timestamp, truncated to the millisecond (so never before a millisecond-aligned start)."""
    whole, milliseconds = divmod(math.floor(seconds * 1000), 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{milliseconds:03d}Z"


def with_demo_roster(config: KpimonConfig) -> KpimonConfig:
    """The config itself if it names reps; else its teams (or the demo teams) with four reps each."""
    if config.reps:
        return config
    teams = config.teams or {team: TeamConfig(timezone=zone) for team, zone in DEMO_TEAMS.items()}
    names = {team: DEMO_REP_NAMES.get(team, GENERIC_REP_NAMES).split() for team in teams}
    reps = {f"{team}-{name}": RepConfig(team=team) for team in teams for name in names[team]}
    return config.model_copy(update={"teams": teams, "reps": reps})


def topic_kind(event: EventDict) -> TopicKind:
    return "marketing" if event["type"] in MARKETING_TYPES else "crm"


@dataclass(frozen=True)
class Stream:
    """One Poisson stream of root events: a rep's activity of one kind, or a marketing kind."""

    kind: str
    per_hour: float
    clock: str
    zone: str
    rep_id: str = ""
    team: str = ""


class Simulation:
    """Deterministic event generator: equal config, seed, rate and calls give equal events."""

    def __init__(self, config: KpimonConfig, seed: int, *, rate: float = DEFAULT_RATE, duplicate_rate: float = 0.0):
        if rate <= 0 or not 0 <= duplicate_rate < 1:
            raise ValueError("rate must be > 0 and duplicate_rate in [0, 1)")
        self.config = with_demo_roster(config)
        self.seed, self.rate, self.duplicate_rate = seed, rate, duplicate_rate
        self.injected_duplicates = 0
        self._rng = random.Random(seed)
        self._emitted = self._serial = 0
        self._pending: list[tuple[float, int, EventDict]] = []  # scheduled follow-ups: (due, serial, fields)
        self._recent: deque[EventDict] = deque(maxlen=RECENT_EVENTS_KEPT)
        self._plan: tuple[int, float, list[float]] | None = None  # (bucket, roots per second, cumulative weights)
        self._origin = math.inf  # where event time began: follow-ups build up from there
        self._reps_of: dict[str, list[str]] = {}
        for rep_id, rep in self.config.reps.items():
            self._reps_of.setdefault(rep.team, []).append(rep_id)
        self._streams = [
            Stream(kind, per_hour, "work", self.config.timezone_of(rep.team).key, rep_id, rep.team)
            for rep_id, rep in self.config.reps.items()
            for kind, per_hour in REP_ACTIVITY_PER_HOUR.items()
        ]
        zone = self.config.timezone
        self._streams += [Stream(kind, rate, clock, zone) for kind, (rate, clock) in MARKETING_PER_HOUR.items()]
        self._roots: dict[str, Callable[[Stream, float, Out], None]] = {
            "call.logged": self._call,
            "email.sent": self._email,
            "meeting.booked": self._meeting,
            "demo.completed": self._demo,
            "web.session": self._web_session,
            "lead.created": self._lead,
            "content.published": self._content,
            "social.posted": self._content,
            "campaign.launched": self._campaign_launch,
            "email_campaign.sent": self._email_campaign,
            "spend.recorded": self._spend,
        }

    def events_between(self, start: float, end: float) -> list[SimulatedEvent]:
        """Events with ``occurred_at`` in [start, end) (duplicates keep their original time), in time order."""
        out: Out = []
        if end <= start:
            return out
        self._origin = min(self._origin, start)
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
            clocks = {(s.clock, s.zone) for s in self._streams}
            factors = {(clock, zone): clock_factor(clock, utc.astimezone(ZoneInfo(zone))) for clock, zone in clocks}
            weights = [s.per_hour * factors[s.clock, s.zone] for s in self._streams]
            age = bucket * RATE_BUCKET_SECONDS - self._origin
            events = sum(w * events_per_root(s.kind, age) for w, s in zip(weights, self._streams, strict=True))
            roots_per_second = self.rate * sum(weights) / (events * (1 + self.duplicate_rate))
            self._plan = (bucket, roots_per_second, list(itertools.accumulate(weights)))
        return self._plan[1], self._plan[2]

    # -- emitting, scheduling, helpers ---------------------------------------------------------------------------------

    def _emit(self, moment: float, fields: EventDict, out: Out) -> None:
        event = {"event_id": f"sim-{self.seed}-{self._emitted}", "occurred_at": rfc3339(moment), "source": SOURCE}
        event.update((name, value) for name, value in fields.items() if value is not None)
        self._emitted += 1
        out.append((topic_kind(event), event))
        self._recent.append(event)
        if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
            again = dict(self._rng.choice(self._recent))
            out.append((topic_kind(again), again))
            self.injected_duplicates += 1

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
        return f"{prefix}-{self.seed}-{self._serial}"

    def _currency(self, team: str) -> str:
        return "EUR" if self.config.timezone_of(team).key.startswith("Europe/") else "USD"

    def _campaign_of(self, channel: str) -> str | None:
        """One of the channel's campaigns; None for a channel without any (organic search, referral)."""
        matching = [campaign for campaign, of in DEMO_CAMPAIGNS if of == channel]
        return self._rng.choice(matching) if matching else None

    def _any_team(self) -> str:
        teams = list(self._reps_of)
        return self._rng.choices(teams, weights=[len(self._reps_of[team]) for team in teams])[0]

    # -- a rep's activity ----------------------------------------------------------------------------------------------

    def _call(self, rep: Stream, moment: float, out: Out) -> None:
        outcome = self._rng.choices(CALL_OUTCOMES, CALL_OUTCOME_WEIGHTS)[0]
        talk = self._rng.lognormvariate(math.log(210), 0.3) if outcome == "connected" else None
        seconds = round(talk or self._rng.uniform(*RING_SECONDS), 1)
        fields = {"type": rep.kind, "team": rep.team, "rep_id": rep.rep_id, "outcome": outcome}
        self._emit(moment, {**fields, "duration_seconds": seconds}, out)

    def _email(self, rep: Stream, moment: float, out: Out) -> None:
        owner, contact = {"team": rep.team, "rep_id": rep.rep_id}, f"contact-{self._rng.randrange(1, 50_000)}"
        self._emit(moment, {"type": "email.sent", **owner, "contact_id": contact}, out)
        if self._rng.random() < REPLY_PROBABILITY:
            self._schedule(self._after(moment, "reply"), {"type": "email.replied", **owner, "contact_id": contact})

    def _meeting(self, rep: Stream, moment: float, out: Out) -> None:
        owner, meeting = {"team": rep.team, "rep_id": rep.rep_id}, self._new_id("meeting")
        self._emit(moment, {"type": "meeting.booked", **owner, "meeting_id": meeting}, out)
        if self._rng.random() < MEETING_HELD_PROBABILITY:
            self._schedule(self._after(moment, "meeting"), {"type": "meeting.held", **owner, "meeting_id": meeting})

    def _demo(self, rep: Stream, moment: float, out: Out) -> None:
        self._emit(moment, {"type": "demo.completed", "team": rep.team, "rep_id": rep.rep_id}, out)

    # -- marketing -----------------------------------------------------------------------------------------------------

    def _web_session(self, stream: Stream, moment: float, out: Out) -> None:
        rng = self._rng
        channel, pageviews = rng.choices(LEAD_CHANNELS, LEAD_CHANNEL_WEIGHTS)[0], 1 + int(rng.expovariate(0.4))
        visit = {"visitor_id": f"visitor-{rng.randrange(1, 500_000)}", "pageviews": pageviews}
        seconds = round(pageviews * rng.lognormvariate(3.7, 0.6), 1)
        source = {"channel": channel, "campaign_id": self._campaign_of(channel)}
        visit["bot"] = True if rng.random() < BOT_SESSION_RATE else None  # flagged by the analytics tool
        self._emit(moment, {"type": "web.session", **visit, "duration_seconds": seconds, **source}, out)

    def _content(self, stream: Stream, moment: float, out: Out) -> None:
        channel = self._rng.choice(CONTENT_CHANNELS[stream.kind])
        fields = {"type": stream.kind, "team": self._any_team(), "channel": channel}
        self._emit(moment, {**fields, "content_id": self._new_id("content")}, out)

    def _campaign_launch(self, stream: Stream, moment: float, out: Out) -> None:
        (campaign, channel), team = self._rng.choice(DEMO_CAMPAIGNS), self._any_team()
        budget = {"budget": float(self._rng.randrange(50, 500) * 100), "currency": self._currency(team)}
        launched = {"campaign_id": campaign, "channel": channel, **budget}
        self._emit(moment, {"type": stream.kind, "team": team, **launched}, out)

    def _spend(self, stream: Stream, moment: float, out: Out) -> None:
        rng = self._rng
        channel, team = rng.choice((*PAID_CHANNELS, SALES_CHANNEL)), self._any_team()
        amount = round(DAILY_SPEND.get(channel, DAILY_SALES_SPEND) * rng.uniform(0.7, 1.3), 2)
        spent = {"channel": channel, "campaign_id": self._campaign_of(channel), "amount": amount}
        spent["kind"] = "sales" if channel == SALES_CHANNEL else "marketing"
        fields = {"type": stream.kind, "team": team, **spent, "currency": self._currency(team)}
        self._emit(moment, fields, out)
        if rng.random() < SPEND_CORRECTION_RATE:  # a later record with the right amount replaces this one
            correction = {**fields, "amount": round(amount * rng.uniform(0.8, 1.2), 2)}
            self._schedule(self._after(moment, "correction"), correction | {"replaces": self._recent[-1]["event_id"]})

    def _email_campaign(self, stream: Stream, moment: float, out: Out) -> None:
        rng, team, recipients = self._rng, self._any_team(), self._rng.randint(*RECIPIENTS)
        campaign = self._campaign_of("email")
        self._emit(moment, {"type": stream.kind, "team": team, "campaign_id": campaign, "recipients": recipients}, out)
        first_contact = rng.randrange(1, 50_000)
        for offset in range(recipients):
            base = {"team": team, "campaign_id": campaign, "contact_id": f"contact-{first_contact + offset}"}
            draw = rng.random()
            if draw < BOUNCE_RATE:
                self._schedule(moment + rng.uniform(1, 120), {"type": "email.bounced", **base})
            elif draw < BOUNCE_RATE + OPEN_RATE:
                opened = self._after(moment, "reply")
                self._schedule(opened, {"type": "email.opened", **base})
                if rng.random() < CLICK_PER_OPEN:
                    self._schedule(opened + rng.uniform(5, 120), {"type": "email.clicked", **base})
                if rng.random() < UNSUBSCRIBE_PER_OPEN:
                    self._schedule(opened + rng.uniform(5, 300), {"type": "email.unsubscribed", **base})

    # -- the funnel ----------------------------------------------------------------------------------------------------

    def _lead(self, stream: Stream, moment: float, out: Out) -> None:
        rng, lead, team = self._rng, self._new_id("lead"), self._any_team()
        channel = rng.choices(LEAD_CHANNELS, LEAD_CHANNEL_WEIGHTS)[0]
        source = {"channel": channel, "campaign_id": self._campaign_of(channel)}
        contact = f"contact-{rng.randrange(1, CONTACTS)}"
        created = {"type": "lead.created", "team": team, "lead_id": lead, "contact_id": contact, **source}
        if rng.random() < JOURNEY_RATE:  # the person visits the site or clicks an email first: the lead comes after
            moment = self._journey(contact, moment)
            self._schedule(moment, created)
        else:
            self._emit(moment, created, out)
        if rng.random() >= MQL_RATE:
            return
        moment = self._after(moment, "mql")
        self._schedule(moment, {"type": "lead.qualified", "team": team, "lead_id": lead, "stage": "mql"})
        if rng.random() >= SQL_RATE:
            return
        owner = {"team": team, "rep_id": rng.choice(self._reps_of[team])}
        moment = self._after(moment, "sql")
        self._schedule(moment, {"type": "lead.qualified", **owner, "lead_id": lead, "stage": "sql"})
        if rng.random() < OPPORTUNITY_RATE:
            self._opportunity(self._after(moment, "opportunity"), lead, owner, source)

    def _journey(self, contact: str, moment: float) -> float:
        """The touches of a lead's person before the lead, the first one at ``moment``; the time after the last."""
        rng = self._rng
        for _ in range(rng.randint(*JOURNEY_TOUCHES)):
            if rng.random() < EMAIL_TOUCH_SHARE:
                touch: EventDict = {"type": "email.clicked", "campaign_id": self._campaign_of("email")}
            else:
                channel, pageviews = rng.choices(LEAD_CHANNELS, LEAD_CHANNEL_WEIGHTS)[0], 1 + int(rng.expovariate(0.4))
                visit = {"visitor_id": f"visitor-{contact}", "pageviews": pageviews, "duration_seconds": 45 * pageviews}
                touch = {"type": "web.session", **visit, "channel": channel, "campaign_id": self._campaign_of(channel)}
            self._schedule(moment, {**touch, "contact_id": contact})
            moment = self._after(moment, "touch")
        return moment

    def _opportunity(self, opened: float, lead: str, owner: EventDict, source: EventDict) -> None:
        """A deal of the lead, with the lead's channel and campaign (``source``), on its creation and its win."""
        rng, deal, currency = self._rng, self._new_id("deal"), self._currency(owner["team"])
        amount = round(math.exp(rng.uniform(math.log(5_000), math.log(80_000))), 2)
        deal_fields = {"deal_id": deal, "lead_id": lead, "amount": amount, "currency": currency, **source}
        self._schedule(opened, {"type": "opportunity.created", **owner, **deal_fields})
        won = rng.random() < WIN_RATE
        moment, steps = opened, len(STAGES) - 1 if won else rng.randint(0, len(STAGES) - 1)
        for from_stage, to_stage in itertools.pairwise(STAGES[: steps + 1]):
            moment = self._after(moment, "stage")
            stages = {"from_stage": from_stage, "to_stage": to_stage}
            self._schedule(moment, {"type": "opportunity.stage_changed", **owner, "deal_id": deal, **stages})
        closing: EventDict = {"type": "deal.lost", "reason": rng.choice(LOSS_REASONS)}
        if won:
            closing = {"type": "deal.won", "amount": round(amount * rng.uniform(0.85, 1.0), 2), "currency": currency}
            closing |= {"opened_at": rfc3339(opened), **source}
        self._schedule(self._after(moment, "close"), {**closing, **owner, "deal_id": deal})


# -- producing to Kafka ------------------------------------------------------------------------------------------------

TICK_SECONDS = 0.1
PROGRESS_EVERY_SECONDS = 5.0


def progress_line(counts: dict[TopicKind, int], elapsed: float) -> str:
    produced, per_second = sum(counts.values()), sum(counts.values()) / elapsed if elapsed > 0 else 0.0
    topics = f"crm {counts['crm']:,}, marketing {counts['marketing']:,}"
    return f"simulate: {produced:,} events ({topics}) in {elapsed:.1f} s, {per_second:.1f} events/s"


def _stop_on_signals(stop: asyncio.Event) -> list[signal.Signals]:
    """SIGINT and SIGTERM set ``stop`` (where the loop can handle signals); the installed ones."""
    loop, installed = asyncio.get_running_loop(), []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    return installed


def message(event: EventDict) -> tuple[bytes, bytes]:
    """(key, value) of the Kafka message of an event: keyed by its routing key, so the worker need not re-key it."""
    return routing_key_of(event).encode(), orjson.dumps(event)


async def _send(producer: AIOKafkaProducer, topics: dict[TopicKind, str], batch: list[SimulatedEvent]) -> None:
    """Produce a batch, keyed by routing key, and wait until the broker has it."""
    deliveries = []
    for kind, event in batch:
        key, value = message(event)
        deliveries.append(await producer.send(topics[kind], value, key=key))
    if deliveries:
        await asyncio.gather(*deliveries)


def _now_ms() -> float:
    return math.floor(time.time() * 1000) / 1000


async def run_simulation(
    settings: Settings,
    config: KpimonConfig,
    *,
    rate: float,
    seed: int,
    duration: float | None,
    total: int | None,
    progress: Callable[[str], None] | None,
    duplicate_rate: float = 0.0,
) -> int:
    """Produce simulated events in real time at ``rate`` events/s until ``duration``, ``total`` or a signal."""
    simulation = Simulation(config, seed, rate=rate, duplicate_rate=duplicate_rate)
    topics: dict[TopicKind, str] = {"crm": settings.crm_topic, "marketing": settings.marketing_topic}
    servers = settings.bootstrap_servers
    await ensure_topics(servers, list(topics.values()), settings.partitions, settings.replication_factor)
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5, compression_type=None)
    await producer.start()
    stop, counts = asyncio.Event(), dict.fromkeys(topics, 0)
    handled = _stop_on_signals(stop)
    started = window_start = _now_ms()
    deadline = started + duration if duration is not None else math.inf
    next_report = started + PROGRESS_EVERY_SECONDS
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=TICK_SECONDS)
            now = min(_now_ms(), deadline)
            batch = simulation.events_between(window_start, now)
            window_start = now
            if total is not None:
                batch = batch[: max(0, total - sum(counts.values()))]
            await _send(producer, topics, batch)
            for kind, _ in batch:
                counts[kind] += 1
            done = stop.is_set() or now >= deadline or (total is not None and sum(counts.values()) >= total)
            if progress and (done or now >= next_report):
                progress(progress_line(counts, now - started))
                next_report = now + PROGRESS_EVERY_SECONDS
            if done:
                return sum(counts.values())
    finally:
        for sig in handled:
            asyncio.get_running_loop().remove_signal_handler(sig)
        try:
            await producer.flush()
        finally:
            await producer.stop()
