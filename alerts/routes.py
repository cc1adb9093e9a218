"""Where alert messages go: Slack incoming webhooks and generic JSON webhooks.

A route names the environment variable that holds its URL; the URL itself is a
secret and never appears in the rules file. Example::

    routes:
      sales-slack: {type: slack, webhook_url_env: SLACK_SALES_WEBHOOK_URL}
      ops-hook:    {type: webhook, url_env: OPS_WEBHOOK_URL}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", description="an environment variable name")]


class SlackRoute(BaseModel):
    """A Slack incoming webhook: Block Kit messages with a text fallback, at most 1 per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["slack"]
    webhook_url_env: EnvName
    min_interval_seconds: float = Field(1.0, ge=0, description="Slack accepts about 1 message per second")

    @property
    def url_env(self) -> str:
        return self.webhook_url_env


class WebhookRoute(BaseModel):
    """A generic JSON webhook: the alert event as JSON, with an ``Idempotency-Key`` header."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"]
    url_env: EnvName
    min_interval_seconds: float = Field(0.0, ge=0)


Route = Annotated[SlackRoute | WebhookRoute, Field(discriminator="type")]
