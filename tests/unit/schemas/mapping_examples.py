"""A small CRM export's mapping and files, shared by the mapping and the replay tests.

``DEALS_MAPPING`` turns each row of a deals file (columns ``DEALS_HEADER``) into
opportunity.created, deal.won and deal.lost events, each under its condition, and
joins the reps file (``REPS_CSV``) for the team. ``DEAL_WON`` is its deal.won event
with only the fields the contract requires.
"""

DEAL_WON = """\
  - type: deal.won
    when: {column: stage, equals: Won}
    event_id: "crm-{id}-won"
    occurred_at: "{closed}"
    fields:
      deal_id: "{id}"
      amount: {column: value, default: "0"}
      currency: USD
"""

DEALS_MAPPING = (
    """\
source: test-crm
date_formats: ["%m/%d/%Y", "%Y-%m-%d %H:%M"]
timezone: America/New_York
join:
  reps: {file: reps.csv, key: rep}
skip_when: {column: stage, equals: Prospecting}
events:
  - type: opportunity.created
    when: {column: stage, one_of: [Open, Won, Lost]}
    event_id: "crm-{id}-created"
    occurred_at: "{opened}"
    fields:
      deal_id: "{id}"
      rep_id: "{rep}"
      team: "{reps.office}"
      amount: "{value}"
      currency: USD
      channel: "{channel}"
    attributes:
      account: "{account}"
"""
    + DEAL_WON
    + """\
      rep_id: "{rep}"
      team: {column: reps.office, default: null}
      opened_at: "{opened}"
  - type: deal.lost
    when: {column: stage, equals: Lost}
    event_id: "crm-{id}-lost"
    occurred_at: "{closed}"
    fields: {deal_id: "{id}", reason: "{reason}"}
"""
)

DEALS_HEADER = "id,rep,stage,opened,closed,value,channel,account,reason"
REPS_CSV = "rep,office\nann,East\nbob,West\n"
