"""The workload of bench/scrape.py: a roster of many reps, and contract events over many channels and campaigns.

Deterministic for a seed. The mix puts series in every scope kind: rep activity (calls with talk
time, emails, meetings, demos), web sessions and leads per channel and campaign, opportunities
won and lost (revenue, open pipeline, cycle samples, loss reasons), content, social posts and
email campaigns. Events are keyed by their routing key (``simulator.message``) and each goes to
the topic the simulator would use (``simulator.topic_kind``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import yaml

from streams.tools.simulation.model import rfc3339, topic_kind

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Singapore", "America/Los_Angeles", "Asia/Kolkata")
MIX = (
    ("call.logged", 25),
    ("email.sent", 20),
    ("meeting.booked", 4),
    ("demo.completed", 2),
    ("web.session", 28),
    ("lead.created", 8),
    ("opportunity.created", 5),
    ("deal.won", 2),
    ("deal.lost", 1),
    ("content.published", 2),
    ("social.posted", 1),
    ("email_campaign.sent", 1),
    ("email.opened", 1),
)
REASONS = ("price", "competitor", "no decision", "timing")
CAMPAIGN_SHARE = 0.7  # of web sessions, leads and opportunities, the share that names a campaign
RECENT_SHARE, DAYS_SHARE = 0.4, 0.3  # of the warm-up: in the last two hours, in the last two days
TWO_HOURS, TWO_DAYS, DAY = 7_200, 172_800, 86_400
Event = dict[str, Any]


@dataclass(frozen=True)
class Roster:
    reps: tuple[tuple[str, str], ...]  # (rep, team)
    teams: tuple[str, ...]
    channels: tuple[str, ...]
    campaigns: tuple[tuple[str, str], ...]  # (campaign, its channel)

    @classmethod
    def generated(cls, reps: int, teams: int, channels: int, campaigns: int) -> Roster:
        team_ids = tuple(f"team{t:02d}" for t in range(teams))
        channel_ids = tuple(f"channel{c:03d}" for c in range(channels))
        return cls(
            reps=tuple((f"rep{r:04d}", team_ids[r % teams]) for r in range(reps)),
            teams=team_ids,
            channels=channel_ids,
            campaigns=tuple((f"campaign{k:03d}", channel_ids[k % channels]) for k in range(campaigns)),
        )


def config_yaml(roster: Roster) -> str:
    """The worker's config file: the teams in five time zones and every rep in its team."""
    return yaml.safe_dump(
        {
            "timezone": "UTC",
            "reporting_currency": "EUR",
            "teams": {team: {"timezone": ZONES[i % len(ZONES)]} for i, team in enumerate(roster.teams)},
            "reps": {rep: {"team": team} for rep, team in roster.reps},
        },
        sort_keys=False,
    )


class EventMaker:
    def __init__(self, roster: Roster, seed: int) -> None:
        self._roster = roster
        self._rng = random.Random(seed)
        self._kinds, self._weights = zip(*MIX, strict=True)
        self._number = 0
        self._open: list[tuple[str, str, str]] = []  # deals created, not yet closed: (deal, rep, team)
        self._run = f"{seed}-{self._rng.getrandbits(32):08x}"

    def warmup(self, events: int, now: float, days: int) -> list[tuple[str, Event]]:
        """``events`` events before ``now``: most in the last two hours and two days, the rest over ``days``."""
        rng, made = self._rng, []
        for _ in range(events):
            draw = rng.random()
            span = TWO_HOURS if draw < RECENT_SHARE else TWO_DAYS if draw < RECENT_SHARE + DAYS_SHARE else days * DAY
            made.append(self.event(now - rng.uniform(0, span)))
        return made

    def event(self, at: float) -> tuple[str, Event]:
        """One event at ``at`` (epoch seconds), and the topic kind it goes to."""
        rng, roster = self._rng, self._roster
        kind = rng.choices(self._kinds, self._weights)[0]
        self._number += 1
        rep, team = rng.choice(roster.reps)
        campaign, channel = rng.choice(roster.campaigns)
        if rng.random() >= CAMPAIGN_SHARE:
            campaign, channel = "", rng.choice(roster.channels)
        base: Event = {"event_id": f"bench-{self._run}-{self._number}", "type": kind, "occurred_at": rfc3339(at)}
        base["source"] = "bench"
        event = base | self._fields(kind, rep, team, channel, campaign)
        if event["type"] != kind:  # a close with no open deal left: a call instead
            event = base | {"type": "call.logged"} | self._fields("call.logged", rep, team, channel, campaign)
        return topic_kind(event), {name: value for name, value in event.items() if value != ""}

    def _fields(self, kind: str, rep: str, team: str, channel: str, campaign: str) -> Event:
        rng, number = self._rng, self._number
        match kind:
            case "call.logged":
                outcome = rng.choice(("connected", "no_answer", "voicemail"))
                return {
                    "rep_id": rep,
                    "team": team,
                    "duration_seconds": round(rng.uniform(5, 900), 1),
                    "outcome": outcome,
                }
            case "email.sent":
                return {"rep_id": rep, "team": team, "contact_id": f"contact{rng.randrange(50_000)}"}
            case "meeting.booked":
                return {"rep_id": rep, "team": team, "meeting_id": f"meeting-{self._run}-{number}"}
            case "demo.completed":
                return {"rep_id": rep, "team": team}
            case "web.session":
                pages = 1 + int(rng.expovariate(0.5))
                return {
                    "visitor_id": f"visitor{rng.randrange(20_000)}",
                    "pageviews": pages,
                    "duration_seconds": 20 * pages,
                    "channel": channel,
                    "campaign_id": campaign,
                }
            case "lead.created":
                return {"lead_id": f"lead-{self._run}-{number}", "channel": channel, "campaign_id": campaign}
            case "opportunity.created":
                deal = f"deal-{self._run}-{number}"
                self._open.append((deal, rep, team))
                amount = round(rng.uniform(1_000, 50_000), 2)
                return {"deal_id": deal, "rep_id": rep, "team": team, "amount": amount, "currency": "EUR"} | {
                    "channel": channel,
                    "campaign_id": campaign,
                }
            case "deal.won" | "deal.lost" if self._open:
                deal, rep, team = self._open.pop(rng.randrange(len(self._open)))
                if kind == "deal.lost":
                    return {"deal_id": deal, "rep_id": rep, "team": team, "reason": rng.choice(REASONS)}
                amount = round(rng.uniform(1_000, 50_000), 2)
                return {"deal_id": deal, "rep_id": rep, "team": team, "amount": amount, "currency": "EUR"}
            case "content.published" | "social.posted":
                return {"channel": channel, "content_id": f"content-{self._run}-{number}"}
            case "email_campaign.sent" if campaign:
                return {"campaign_id": campaign, "recipients": rng.randrange(100, 5_000)}
            case "email.opened" if campaign:
                return {"campaign_id": campaign, "contact_id": f"contact{rng.randrange(50_000)}"}
            case _:
                return {"type": "call.logged"}  # no open deal to close, no campaign to send: a call instead
