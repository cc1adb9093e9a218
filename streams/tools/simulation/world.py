"""What happens when a root event happens: its fields, and the follow-ups it schedules. Pure.

``World`` holds one generator per root kind (a call, an email and its reply, a lead and its way
down the funnel, ...). Subclasses decide when roots happen, how long follow-ups take, and how
events and entities are named: ``Simulation`` (``live.py``) at a target rate with the funnel
compressed to minutes, ``History`` (``history.py``) at a realistic daily volume with the funnel
in days and ids that are a pure function of the world's time slots.
"""

from __future__ import annotations

import itertools
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable

from schemas.config import KpimonConfig
from streams.tools.simulation.model import (
    BOT_SESSION_RATE,
    BOUNCE_AFTER_SECONDS,
    BOUNCE_RATE,
    CALL_OUTCOME_WEIGHTS,
    CALL_OUTCOMES,
    CHURN_RATE,
    CLICK_AFTER_OPEN_SECONDS,
    CLICK_PER_OPEN,
    CONTACTS,
    CONTENT_CHANNELS,
    CONTRACTION_RATE,
    DAILY_SALES_SPEND,
    DAILY_SPEND,
    DEAL_COST_SHARE,
    DEMO_CAMPAIGNS,
    EMAIL_TOUCH_SHARE,
    EXPANSION_RATE,
    HOSTED_COST_SHARE,
    HOSTED_PLANS,
    JOURNEY_RATE,
    JOURNEY_TOUCHES,
    LEAD_CHANNEL_WEIGHTS,
    LEAD_CHANNELS,
    LOSS_REASONS,
    MEETING_HELD_PROBABILITY,
    MQL_RATE,
    NEW_DEAL_STAGE,
    OPEN_RATE,
    OPPORTUNITY_RATE,
    PAID_CHANNELS,
    PLANS,
    RECIPIENTS,
    REPLY_PROBABILITY,
    RETURN_RATE,
    RING_SECONDS,
    SALES_CHANNEL,
    SEATS,
    SPEND_CORRECTION_RATE,
    SQL_RATE,
    STAGE_ENTRY_SECONDS,
    STAGES,
    SURVEY_AGAIN_RATE,
    SURVEY_RATES,
    SURVEY_SCORE_WEIGHTS,
    UNSUBSCRIBE_AFTER_OPEN_SECONDS,
    UNSUBSCRIBE_PER_OPEN,
    WIN_RATE,
    YEARLY_MONTHS_PAID,
    YEARLY_SHARE,
    EventDict,
    Out,
    Stream,
    rfc3339,
    streams_of,
    with_demo_roster,
)

Root = Callable[[Stream, float, Out], None]


class World(ABC):
    """The roster, the streams of root events, and what each root event brings with it."""

    _rng: random.Random

    def __init__(self, config: KpimonConfig) -> None:
        self.config = with_demo_roster(config)
        self._reps_of: dict[str, list[str]] = {}
        for rep_id, rep in self.config.reps.items():
            self._reps_of.setdefault(rep.team, []).append(rep_id)
        self._streams = streams_of(self.config)
        self._roots: dict[str, Root] = {
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
            "subscription.started": self._subscription,
        }

    # -- what subclasses decide ----------------------------------------------------------------------------------------

    @abstractmethod
    def _emit(self, moment: float, fields: EventDict, out: Out) -> str:
        """Add the event with ``fields`` at ``moment`` to ``out`` (or to the world's own output); its event id."""

    @abstractmethod
    def _schedule(self, due: float, fields: EventDict) -> None:
        """A follow-up of the root being generated, at ``due`` (always later than its root)."""

    @abstractmethod
    def _after(self, moment: float, step: str) -> float:
        """When the next funnel ``step`` after ``moment`` happens (``reply``, ``mql``, ``close``, ...)."""

    @abstractmethod
    def _new_id(self, prefix: str) -> str:
        """A new entity id: ``lead-...``, ``deal-...``, ``meeting-...``, ``content-...``."""

    # -- helpers -------------------------------------------------------------------------------------------------------

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
        owner, contact = {"team": rep.team, "rep_id": rep.rep_id}, f"contact-{self._rng.randrange(1, CONTACTS)}"
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
        first = self._emit(moment, fields, out)
        if rng.random() < SPEND_CORRECTION_RATE:  # a later record with the right amount replaces this one
            correction = {**fields, "amount": round(amount * rng.uniform(0.8, 1.2), 2)}
            self._schedule(self._after(moment, "correction"), correction | {"replaces": first})

    def _email_campaign(self, stream: Stream, moment: float, out: Out) -> None:
        rng, team, recipients = self._rng, self._any_team(), self._rng.randint(*RECIPIENTS)
        campaign = self._campaign_of("email")
        self._emit(moment, {"type": stream.kind, "team": team, "campaign_id": campaign, "recipients": recipients}, out)
        first_contact = rng.randrange(1, CONTACTS)
        for offset in range(recipients):
            base = {"team": team, "campaign_id": campaign, "contact_id": f"contact-{first_contact + offset}"}
            draw = rng.random()
            if draw < BOUNCE_RATE:
                self._schedule(moment + rng.uniform(*BOUNCE_AFTER_SECONDS), {"type": "email.bounced", **base})
            elif draw < BOUNCE_RATE + OPEN_RATE:
                opened = self._after(moment, "reply")
                self._schedule(opened, {"type": "email.opened", **base})
                if rng.random() < CLICK_PER_OPEN:
                    clicked = opened + rng.uniform(*CLICK_AFTER_OPEN_SECONDS)
                    self._schedule(clicked, {"type": "email.clicked", **base})
                if rng.random() < UNSUBSCRIBE_PER_OPEN:
                    left = opened + rng.uniform(*UNSUBSCRIBE_AFTER_OPEN_SECONDS)
                    self._schedule(left, {"type": "email.unsubscribed", **base})

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
        """A deal of the lead, with the lead's channel and campaign (``source``), on its creation and its win.

        It enters the first stage right after its opening and moves through the next ones (all of them if won).
        """
        rng, deal, currency = self._rng, self._new_id("deal"), self._currency(owner["team"])
        amount = round(math.exp(rng.uniform(math.log(5_000), math.log(80_000))), 2)
        deal_fields = {"deal_id": deal, "lead_id": lead, "amount": amount, "currency": currency, **source}
        self._schedule(opened, {"type": "opportunity.created", **owner, **deal_fields})
        won = rng.random() < WIN_RATE
        moment, steps = opened + STAGE_ENTRY_SECONDS, len(STAGES) - 1 if won else rng.randint(0, len(STAGES) - 1)
        entry = {"from_stage": NEW_DEAL_STAGE, "to_stage": STAGES[0]}
        self._schedule(moment, {"type": "opportunity.stage_changed", **owner, "deal_id": deal, **entry})
        for from_stage, to_stage in itertools.pairwise(STAGES[: steps + 1]):
            moment = self._after(moment, "stage")
            stages = {"from_stage": from_stage, "to_stage": to_stage}
            self._schedule(moment, {"type": "opportunity.stage_changed", **owner, "deal_id": deal, **stages})
        closing: EventDict = {"type": "deal.lost", "reason": rng.choice(LOSS_REASONS)}
        if won:  # a year's contract: it opens a subscription of the new account
            price = round(amount * rng.uniform(0.85, 1.0), 2)
            closing = {"type": "deal.won", "amount": price, "currency": currency, "opened_at": rfc3339(opened)}
            closing |= {
                **source,
                "account_id": f"account-{deal}",
                "cost": round(price * rng.uniform(*DEAL_COST_SHARE), 2),
            }
        self._schedule(self._after(moment, "close"), {**closing, **owner, "deal_id": deal})

    # -- customers -----------------------------------------------------------------------------------------------------

    def _subscription(self, stream: Stream, moment: float, out: Out) -> None:
        """A self-serve signup: its subscription, later more or fewer seats or a churn, and survey answers."""
        rng, account, team = self._rng, self._new_id("account"), self._any_team()
        owner = {"team": team, "rep_id": rng.choice(self._reps_of[team])}
        (plan, per_seat), seats = rng.choice(PLANS), rng.randint(*SEATS)
        yearly = rng.random() < YEARLY_SHARE
        period, months_paid = ("year", YEARLY_MONTHS_PAID) if yearly else ("month", 1)
        base = {"account_id": account, "currency": self._currency(team), "plan": plan, "billing_period": period}

        def price(seat_count: int) -> EventDict:
            amount = per_seat * seat_count * months_paid
            cost = {"cost": round(amount * HOSTED_COST_SHARE, 2)} if plan in HOSTED_PLANS else {}
            return {**base, "seats": seat_count, "amount": float(amount), **cost}

        channel = rng.choices(LEAD_CHANNELS, LEAD_CHANNEL_WEIGHTS)[0]
        self._emit(moment, {"type": "subscription.started", **owner, "channel": channel, **price(seats)}, out)
        self._survey_answers(account, moment)
        draw, later = rng.random(), moment
        if draw < EXPANSION_RATE + CONTRACTION_RATE:
            later = self._after(moment, "expansion")
            change = rng.randint(1, 5) if draw < EXPANSION_RATE else -rng.randint(0, seats - 1)  # one seat is left
            if change:
                self._schedule(later, {"type": "subscription.changed", **price(seats + change)})
        if rng.random() < CHURN_RATE:
            churned = self._after(later, "churn")
            self._schedule(churned, {"type": "subscription.churned", **base})
            if rng.random() < RETURN_RATE:  # the account comes back, on its first plan
                self._schedule(self._after(churned, "return"), {"type": "subscription.started", **price(seats)})

    def _survey_answers(self, account: str, moment: float) -> None:
        rng = self._rng
        for kind, rate in SURVEY_RATES.items():
            if rng.random() >= rate:
                continue
            weights = SURVEY_SCORE_WEIGHTS[kind]
            low = 0 if kind == "nps" else 1
            answered = self._after(moment, "survey")
            for _ in range(2 if rng.random() < SURVEY_AGAIN_RATE else 1):
                score = rng.choices(range(low, low + len(weights)), weights)[0]
                self._schedule(
                    answered, {"type": "survey.responded", "account_id": account, "kind": kind, "score": score}
                )
                answered = self._after(answered, "reply")
