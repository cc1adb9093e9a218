"""What one valid event contributes: the scopes it counts in and its counter deltas. Pure."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from schemas.config import KpimonConfig
from schemas.events import (
    AnyEvent,
    CallLogged,
    CampaignLaunched,
    ContentPublished,
    DemoCompleted,
    EmailCampaignSent,
    EmailReplied,
    EmailSent,
    MeetingBooked,
    MeetingHeld,
    SocialPosted,
    SurveyResponded,
    WebSession,
    field_of,
)
from schemas.scopes import OVERALL, Scope
from streams.core.records import UNKNOWN_CHANNEL

UNASSIGNED_TEAM = "unassigned"


def scope_timezone(scope: Scope, config: KpimonConfig) -> ZoneInfo:
    """A team's (and its reps') own time zone; the config's default for the overall, channel and campaign scopes."""
    return config.timezone_of(scope.team) if scope.team else ZoneInfo(config.timezone)


CounterDeltas = dict[str, float]


def survey_counters(kind: str, score: int) -> CounterDeltas:
    """One survey answer: NPS promoters score 9-10 and detractors 0-6; CSAT satisfied 4-5; CES sums the scores."""
    if kind == "nps":
        return {"nps_responses": 1, "nps_promoters": int(score >= 9), "nps_detractors": int(score <= 6)}
    if kind == "csat":
        return {"csat_responses": 1, "csat_satisfied": int(score >= 4)}
    return {"ces_responses": 1, "ces_score_total": score}


def counter_deltas(event: AnyEvent) -> CounterDeltas:
    """The counters an event adds to; empty for events no KPI of the catalog counts yet."""
    match event:
        case CallLogged():
            deltas: CounterDeltas = {"calls": 1, "call_duration_seconds": event.duration_seconds}
            if event.outcome == "connected":
                deltas["calls_connected"] = 1
            return deltas
        case EmailSent():
            return {"emails_sent": 1}
        case EmailReplied():
            return {"email_replies": 1}
        case MeetingBooked():
            return {"meetings_booked": 1}
        case MeetingHeld():
            return {"meetings_held": 1}
        case DemoCompleted():
            return {"demos_completed": 1}
        case ContentPublished():
            return {"content_published": 1}
        case SocialPosted():
            return {"social_posts": 1}
        case CampaignLaunched():
            return {"campaigns_launched": 1}
        case EmailCampaignSent():
            return {"email_campaign_sends": event.recipients}
        case SurveyResponded(account_id=None):  # an account's answers count in its state (streams.entities.accounts)
            return {name: value for name, value in survey_counters(event.kind, event.score).items() if value}
        case WebSession(bot=True):
            return {"web_bot_sessions": 1}  # in no other web counter
        case WebSession():
            web: CounterDeltas = {"web_sessions": 1, "web_pageviews": event.pageviews}
            web["web_session_seconds"] = event.duration_seconds
            if event.pageviews <= 1:
                web["web_bounced_sessions"] = 1
            return web
        case _:
            return {}


def event_channel(event: AnyEvent) -> str | None:
    """The channel an event's own counters count under: its ``channel``; ``unknown`` for a web session without one.

    As for a lead without a channel, so that the sessions per channel add up to all sessions.
    """
    channel: str | None = field_of(event, "channel")
    if channel is None and isinstance(event, WebSession):
        return UNKNOWN_CHANNEL
    return channel


def scopes_of(event: AnyEvent, config: KpimonConfig) -> list[Scope]:
    """Overall, plus the event's team, rep, channel and campaign where it has them (see ``scopes_for``)."""
    return scopes_for(event.team, event.rep_id, event_channel(event), field_of(event, "campaign_id"), config)


def scopes_for(
    team: str | None, rep: str | None, channel: str | None, campaign: str | None, config: KpimonConfig
) -> list[Scope]:
    """Overall, plus the team, rep, channel and campaign given.

    The team is the given ``team``, else the rep's team from the config, else
    ``unassigned`` for a rep (a rep is always shown within a team). No campaign,
    no campaign scope.
    """
    team = team or (config.team_of(rep) if rep else None)
    scopes = [OVERALL]
    if rep:
        team = team or UNASSIGNED_TEAM
        scopes.append(Scope(team=team, rep=rep))
    if team:
        scopes.append(Scope(team=team))
    if channel:
        scopes.append(Scope(channel=channel))
    if campaign:
        scopes.append(Scope(campaign=campaign))
    return scopes
