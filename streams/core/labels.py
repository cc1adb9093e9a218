"""Bounded label values: the team, rep, channel, campaign, loss reason and deal stage an event counts under. Pure.

Every distinct value of these becomes a scope (about 240 series, its bucket groups, Redis keys
and alert states) or, for a loss reason, a counter and a series per scope, and for a deal stage
(``opportunity.stage_changed`` ``to_stage``; ``from_stage`` is read by no KPI and left as sent)
two counters and four series per scope. So each dimension
follows a rule of the config (``schemas.config.LabelsConfig``):

- **known** values are always labels: the config's teams and reps, the ``known`` channels,
  campaigns, loss reasons and stages, and the values kpimon itself uses (``unknown``, ``unassigned``, ``other``);
- a value longer than ``MAX_LABEL_LENGTH`` characters or holding a control, format, surrogate,
  private-use or unassigned character is folded into ``other``, whatever the rule;
- any other value follows ``unknown``: ``admit`` the first ``max_unknown`` distinct values seen in
  the partition (kept in the partition's progress, in the order admitted) and fold the later ones
  into ``other``; ``fold`` them all into ``other``; or ``deadletter`` the event (reps and teams:
  ``unknown_rep``, ``unknown_team``; the pipeline asks ``LabelPolicy.refusal``).

Every fold is counted per dimension in the partition's progress (``kpimon_labels_folded_total``).

**Deterministic.** The events are placed before anything else reads them (dedup, entity states,
folding), and the placed event is what the entity states keep: a deal counted under ``other``
moves out of ``other`` exactly, the counters of the ``all`` scope and of every team do not depend
on any fold. The admitted values of a partition only grow, and they are durable with its progress,
before any counter they place (``streams.ingest.batch``): a record read again after a crash finds
its value admitted if it was admitted the first time, and the partition full if it was folded. So
a restart, a replay or another worker taking the partition over places every event as before.
Values are admitted per partition, not across the cluster (no worker sees all partitions): with P
partitions up to P x ``max_unknown`` values of a dimension can be labels, and a value admitted in
one partition but not in another counts partly under its own label and partly under ``other``.
List the values that must be exact under ``known``.

Internal events (``schemas.events.INTERNAL_TYPES``) carry labels placed already by the entity that
sent them, and are not placed again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from schemas.config import MAX_LABEL_LENGTH, KpimonConfig, LabelRule
from schemas.events import INTERNAL_TYPES, AnyEvent, field_of
from streams.core.facts import UNASSIGNED_TEAM
from streams.core.records import UNKNOWN_CHANNEL, Accepted
from streams.core.validation import Rejection

OTHER_LABEL = "other"
Dimension = Literal["team", "rep", "channel", "campaign", "lost_reason", "stage"]
DIMENSIONS: tuple[Dimension, ...] = ("team", "rep", "channel", "campaign", "lost_reason", "stage")
_FIELD: dict[Dimension, str] = {
    "team": "team",
    "rep": "rep_id",
    "channel": "channel",
    "campaign": "campaign_id",
    "lost_reason": "reason",
    "stage": "to_stage",
}
_RULE: dict[Dimension, str] = {
    "team": "teams",
    "rep": "reps",
    "channel": "channels",
    "campaign": "campaigns",
    "lost_reason": "lost_reasons",
    "stage": "stages",
}
_RESERVED = frozenset({OTHER_LABEL, UNKNOWN_CHANNEL, UNASSIGNED_TEAM})
AdmittedLabels = dict[str, list[str]]  # dimension -> the unknown values admitted in a partition, in order


def is_bounded_label(value: str) -> bool:
    """At most ``MAX_LABEL_LENGTH`` characters, none of them a control, format, surrogate, private or unassigned one."""
    return len(value) <= MAX_LABEL_LENGTH and not any(unicodedata.category(char)[0] == "C" for char in value)


@dataclass(frozen=True)
class LabelPolicy:
    rules: Mapping[Dimension, LabelRule]
    known: Mapping[Dimension, frozenset[str]]

    @classmethod
    def from_config(cls, config: KpimonConfig) -> LabelPolicy:
        rules: dict[Dimension, LabelRule] = {dim: getattr(config.labels, _RULE[dim]) for dim in DIMENSIONS}
        known = {dim: frozenset(rule.known) | _RESERVED for dim, rule in rules.items()}
        known["team"] = known["team"] | frozenset(config.teams)
        known["rep"] = known["rep"] | frozenset(config.reps)
        return cls(rules, known)

    def refusal(self, event: AnyEvent) -> Rejection | None:
        """Why the event is refused, when its rep or team is unknown and their rule says ``deadletter``."""
        for dimension in ("rep", "team"):
            value = field_of(event, _FIELD[dimension])
            if (
                value is not None
                and self.rules[dimension].unknown == "deadletter"
                and value not in self.known[dimension]
            ):
                return Rejection(
                    f"unknown_{dimension}",
                    f"{dimension} {value!r} is not in the config file: add it under {_RULE[dimension]}, "
                    f"or set labels.{_RULE[dimension]}.unknown to admit or fold",
                )
        return None


@dataclass
class LabelPlacement:
    """One batch's placement: each event with bounded labels, and per partition the values admitted and folds."""

    policy: LabelPolicy
    stored: Mapping[str, AdmittedLabels]  # partition -> what its stored progress admitted
    admitted: dict[str, AdmittedLabels] = field(default_factory=dict)  # partition -> admitted after the batch
    folded: dict[str, dict[str, int]] = field(default_factory=dict)  # partition -> dimension -> folds counted
    _lookup: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (partition, dimension) -> admitted

    def place(self, record: Accepted, *, count: bool) -> Accepted:
        """``record`` with its event's labels placed; its folds counted when ``count`` (its first reading)."""
        event = record.event
        if event.type in INTERNAL_TYPES:
            return record
        partition = str(record.position.partition)
        changes = {}
        for dimension in DIMENSIONS:
            name = _FIELD[dimension]
            value = field_of(event, name)
            if value is None or value in self.policy.known[dimension]:
                continue
            if not self._admits(partition, dimension, value):
                changes[name] = OTHER_LABEL
                if count:
                    folds = self.folded.setdefault(partition, {})
                    folds[dimension] = folds.get(dimension, 0) + 1
        if not changes:
            return record
        return Accepted(record.position, event.model_copy(update=changes))

    def _admits(self, partition: str, dimension: Dimension, value: str) -> bool:
        rule = self.policy.rules[dimension]
        if rule.unknown != "admit" or not is_bounded_label(value):
            return False
        lookup = self._lookup.get((partition, dimension))
        if lookup is None:
            lookup = self._lookup[(partition, dimension)] = set(self.stored.get(partition, {}).get(dimension, ()))
        if value in lookup:
            return True
        if len(lookup) >= rule.max_unknown:
            return False
        lookup.add(value)
        admitted = self.admitted.get(partition)
        if admitted is None:
            admitted = self.admitted[partition] = dict(self.stored.get(partition, {}))
        admitted[dimension] = [*admitted.get(dimension, ()), value]
        return True


def most_values(policy: LabelPolicy, dimension: Dimension, partitions: int) -> int:
    """The most distinct values of a dimension that can be labels: known ones, ``other`` and the admitted ones."""
    rule = policy.rules[dimension]
    admitted = partitions * rule.max_unknown if rule.unknown == "admit" else 0
    return len(policy.known[dimension]) + admitted


def most_scopes(policy: LabelPolicy, partitions: int) -> dict[str, int]:
    """The most scopes of each kind the state and /metrics can hold (a rep counts within each team it names)."""
    teams = most_values(policy, "team", partitions)
    return {
        "all": 1,
        "team": teams,
        "rep": teams * most_values(policy, "rep", partitions),
        "channel": most_values(policy, "channel", partitions),
        "campaign": most_values(policy, "campaign", partitions),
    }
