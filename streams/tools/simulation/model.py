"""The demo world's cast and rules, shared by the live and the history generators. Pure.

Who acts (``with_demo_roster``: the config's reps, or four demo reps per team), how busy they
are (natural rates per hour at an average working hour, and the clocks that shape a day), what
the funnel converts, the campaigns and channels, and how an event becomes a Kafka message
(``message``: keyed by its routing key).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import routing_key_of

TopicKind = Literal["crm", "marketing"]
EventDict = dict[str, Any]
SimulatedEvent = tuple[TopicKind, EventDict]
Out = list[SimulatedEvent]

SOURCE = "simulator"
OFF_HOURS_FLOOR = 0.25
WORKDAY_HOURS, WAKING_HOURS, WAKING_NIGHT_FACTOR = (8.0, 18.0), (7.0, 23.0), 0.4

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
    "subscription.started": (2.0, "waking"),  # a self-serve signup (won deals open subscriptions too)
}
MARKETING_TYPES = {*MARKETING_PER_HOUR, "email.opened", "email.clicked", "email.bounced", "email.unsubscribed"}
MARKETING_TYPES -= {"lead.created", "subscription.started"}  # leads and customers live in the CRM

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
# A deal enters the first stage (from NEW_DEAL_STAGE) STAGE_ENTRY_SECONDS after its opening, then moves on
# through the next ones; a won deal reaches the last. The stages are the example config's labels.stages.
STAGES, NEW_DEAL_STAGE, STAGE_ENTRY_SECONDS = ("discovery", "proposal", "negotiation"), "new", 1.0
LOSS_REASONS = ("price too high", "chose a competitor", "no decision", "bad timing", "no budget", "missing features")
RECIPIENTS = (100, 600)
BOUNCE_RATE, OPEN_RATE, CLICK_PER_OPEN, UNSUBSCRIBE_PER_OPEN = 0.015, 0.25, 0.12, 0.01
CLICK_AFTER_OPEN_SECONDS, UNSUBSCRIBE_AFTER_OPEN_SECONDS, BOUNCE_AFTER_SECONDS = (5, 120), (5, 300), (1, 120)
# Self-serve subscriptions: a plan's monthly price per seat; a yearly plan pays 10 months for 12. Within the
# follow-up horizon a subscription grows (more seats), shrinks or churns, and its account answers surveys.
PLANS = (("starter", 29), ("pro", 79), ("business", 199))
SEATS, YEARLY_SHARE, YEARLY_MONTHS_PAID = (1, 12), 0.3, 10
EXPANSION_RATE, CONTRACTION_RATE, CHURN_RATE, RETURN_RATE = 0.25, 0.1, 0.2, 0.25  # returns: of the churned
# Seasonality: self-serve signups follow the months of the year (``season_factor``), most in SEASON_HIGH_MONTH
# (January: new budgets), fewest six months later (July: holidays); January has SEASON_SWING times July's.
SEASONAL_KINDS, SEASON_HIGH_MONTH, SEASON_SWING = frozenset({"subscription.started"}), 1, 1.5
SEASON_AMPLITUDE = (SEASON_SWING - 1) / (SEASON_SWING + 1)
# Costs: a won deal's delivery (a share of its amount); the business plan's hosting, given on its events (the
# other plans' margin is the config's gross_margin).
DEAL_COST_SHARE, HOSTED_PLANS, HOSTED_COST_SHARE = (0.2, 0.5), ("business",), 0.25
# Share of new accounts answering each survey, and its scores' weights (NPS about +20, CSAT about 80%, CES about 3).
SURVEY_RATES = {"nps": 0.5, "csat": 0.4, "ces": 0.3}
SURVEY_SCORE_WEIGHTS = {
    "nps": (2, 1, 1, 2, 2, 3, 5, 10, 18, 22, 24),  # scores 0..10
    "csat": (4, 6, 10, 40, 40),  # 1..5
    "ces": (15, 30, 25, 15, 8, 4, 3),  # 1..7
}
SURVEY_AGAIN_RATE = 0.05  # the account submits the same survey twice (only the later answer counts)
CONTACTS = 50_000  # the people email campaigns go to, and leads come from: contact-1 .. contact-49999
# A lead's person first visits the site or clicks an email (its touches, for attribution) in JOURNEY_RATE of
# the leads, 1 to 3 times; EMAIL_TOUCH_SHARE of those touches are email clicks.
JOURNEY_RATE, JOURNEY_TOUCHES, EMAIL_TOUCH_SHARE = 0.6, (1, 3), 0.3


def _workday_shape(hour: float) -> float:
    """Unnormalised intensity in working hours: a late-morning and a mid-afternoon peak."""
    return 0.5 + math.exp(-(((hour - 10.75) / 1.25) ** 2)) + 0.8 * math.exp(-(((hour - 15.0) / 1.25) ** 2))


_WORKDAY_STEPS = [WORKDAY_HOURS[0] + (step + 0.5) / 10 for step in range(100)]
_WORKDAY_MEAN = sum(_workday_shape(hour) for hour in _WORKDAY_STEPS) / len(_WORKDAY_STEPS)
PEAK_WORK_FACTOR = max(_workday_shape(hour / 100) for hour in range(800, 1800)) / _WORKDAY_MEAN


def working_hour_factor(moment: datetime) -> float:
    """Intensity at a local ``moment`` relative to an average working hour: 0 on weekends and outside 08:00-18:00."""
    hour = moment.hour + moment.minute / 60
    if moment.weekday() >= 5 or not WORKDAY_HOURS[0] <= hour < WORKDAY_HOURS[1]:
        return 0.0
    return _workday_shape(hour) / _WORKDAY_MEAN


def clock_factor(clock: str, moment: datetime, floor: float = OFF_HOURS_FLOOR) -> float:
    """Intensity relative to an average working hour at a local ``moment``; a ``work`` clock never below ``floor``."""
    if clock == "waking":
        hour = moment.hour + moment.minute / 60
        return 1.0 if WAKING_HOURS[0] <= hour < WAKING_HOURS[1] else WAKING_NIGHT_FACTOR
    if clock == "work":
        return max(floor, working_hour_factor(moment))
    return 1.0


def season_factor(kind: str, moment: datetime) -> float:
    """How busy a root ``kind`` is in a local ``moment``'s month, relative to its yearly average (1 if not seasonal).

    A cosine over the months: 1 + SEASON_AMPLITUDE in SEASON_HIGH_MONTH, 1 - SEASON_AMPLITUDE six months
    later (their ratio is SEASON_SWING), 1 on average over a year.
    """
    if kind not in SEASONAL_KINDS:
        return 1.0
    return 1 + SEASON_AMPLITUDE * math.cos(2 * math.pi * (moment.month - SEASON_HIGH_MONTH) / 12)


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


def message(event: EventDict) -> tuple[bytes, bytes]:
    """(key, value) of the Kafka message of an event: keyed by its routing key, so the worker need not re-key it."""
    return routing_key_of(event).encode(), orjson.dumps(event)


@dataclass(frozen=True)
class Stream:
    """One Poisson stream of root events: a rep's activity of one kind, or a marketing kind."""

    kind: str
    per_hour: float
    clock: str
    zone: str
    rep_id: str = ""
    team: str = ""

    @property
    def name(self) -> str:
        """``emea-anna.call``, ``web``: unique in a world, part of the history's event ids."""
        short = self.kind.split(".", 1)[0]
        return f"{self.rep_id}.{short}" if self.rep_id else short


def streams_of(config: KpimonConfig) -> list[Stream]:
    """Every rep's activity streams (in the team's zone), then the marketing streams (in the config's zone)."""
    streams = [
        Stream(kind, per_hour, "work", config.timezone_of(rep.team).key, rep_id, rep.team)
        for rep_id, rep in config.reps.items()
        for kind, per_hour in REP_ACTIVITY_PER_HOUR.items()
    ]
    zone = config.timezone
    return streams + [Stream(kind, rate, clock, zone) for kind, (rate, clock) in MARKETING_PER_HOUR.items()]
