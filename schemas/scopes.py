"""Where a counter is kept and a KPI is shown: one ``Scope`` for the stream processor, /metrics and alerts. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from schemas.events import Identifier, Label

ScopeKind = Literal["all", "team", "rep", "channel", "campaign"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("all", "team", "rep", "channel", "campaign")
SCOPE_LABEL_NAMES = ("team", "rep", "channel", "campaign")  # /metrics labels besides ``scope`` (the kind)
SCOPE_KEY_SEPARATOR = "|"  # never part of a team, rep or channel: schemas.events.Label excludes it


@dataclass(frozen=True)
class Scope:
    """Overall, a team, a rep (within a team), a channel or a campaign; unused dimensions are "".

    A channel scope has only ``channel`` set, a campaign scope only ``campaign``. Only
    what names a campaign counts in one: an event with a ``campaign_id``, a lead whose
    lead.created named one, a deal whose opportunity.created or deal.won did. Unlike a
    missing channel (``unknown``), a missing campaign puts nothing in any campaign scope.
    """

    team: str = ""
    rep: str = ""
    channel: str = ""
    campaign: str = ""

    @property
    def kind(self) -> ScopeKind:
        if self.rep:
            return "rep"
        if self.campaign:
            return "campaign"
        if self.channel:
            return "channel"
        if self.team:
            return "team"
        return "all"

    @property
    def key(self) -> str:
        """The state key ``"<team>|<rep>|<channel>|<campaign>"``: the campaign, which may hold ``|``, comes last."""
        return SCOPE_KEY_SEPARATOR.join((self.team, self.rep, self.channel, self.campaign))

    @classmethod
    def from_key(cls, key: str) -> Scope:
        team, rep, channel, campaign = key.split(SCOPE_KEY_SEPARATOR, 3)
        return cls(team=team, rep=rep, channel=channel, campaign=campaign)

    @property
    def id(self) -> str:
        """A stable text id for Redis keys and idempotency keys: ``kind:team:rep:channel:campaign``."""
        return ":".join(self.labels)

    @property
    def labels(self) -> tuple[str, str, str, str, str]:
        """The values of the /metrics labels ``scope``, ``team``, ``rep``, ``channel``, ``campaign``."""
        return (self.kind, self.team, self.rep, self.channel, self.campaign)

    def describe(self) -> str:
        """Human words for messages: ``team emea``, ``rep alice (emea)``, ``channel web``, ``overall``."""
        match self.kind:
            case "rep":
                return f"rep {self.rep} ({self.team})"
            case "all":
                return "overall"
            case kind:
                return f"{kind} {getattr(self, kind)}"


OVERALL = Scope()


# The labels a scope of each kind carries, so the ones a selector may narrow it by.
SCOPE_KIND_LABELS: dict[str, tuple[str, ...]] = {
    "all": (),
    "team": ("team",),
    "rep": ("team", "rep"),
    "channel": ("channel",),
    "campaign": ("campaign",),
}


def check_scope_labels(kind: ScopeKind, given: dict[str, str | None]) -> None:
    """Raise ValueError when a label is given that a scope of ``kind`` does not carry."""
    allowed = SCOPE_KIND_LABELS[kind]
    for name, value in given.items():
        if value is not None and name not in allowed:
            takes = f"takes only {', '.join(allowed)}" if allowed else "takes no labels"
            raise ValueError(f"a scope of kind {kind!r} has no {name} label (kind {kind!r} {takes})")


class ScopeSelector(BaseModel):
    """Which scopes a rule watches or a goal covers: every scope of ``kind``, narrowed by the labels given.

    ``{kind: team}`` is every team, ``{kind: team, team: emea}`` one team,
    ``{kind: rep, team: emea}`` every rep of emea, ``{kind: rep, rep: emea-anna}`` one rep.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ScopeKind = "all"
    team: Label | None = None
    rep: Label | None = None
    channel: Label | None = None
    campaign: Identifier | None = None  # campaign ids are free text, like the events' campaign_id

    @model_validator(mode="after")
    def _labels_fit_kind(self) -> ScopeSelector:
        check_scope_labels(
            self.kind, {"team": self.team, "rep": self.rep, "channel": self.channel, "campaign": self.campaign}
        )
        return self

    def matches(self, labels: Scope) -> bool:
        pairs = (
            (self.team, labels.team),
            (self.rep, labels.rep),
            (self.channel, labels.channel),
            (self.campaign, labels.campaign),
        )
        return labels.kind == self.kind and all(wanted is None or wanted == actual for wanted, actual in pairs)
