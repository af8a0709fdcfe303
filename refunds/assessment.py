"""What the refund workflow asks of risk, behind a setting.

Risk reads the refunds' history (rates, verdicts, disputes) to score a customer, so it sits
above `refunds`; the evaluation asks it for a score and whether the customer is on the
watch list through this narrow port instead of importing it, the way it reaches a payment
gateway. `REFUND_DESK["RISK_ASSESSOR"]` names the object (the risk app's
`risk.services.ASSESSOR` unless a deployment swaps it).
"""

from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class Assessment(Protocol):
    score: int
    level: str
    signals: list


class RiskAssessor(Protocol):
    def assess_customer(self, *, customer, refund=None) -> Assessment:
        """Bring the customer's risk profile up to date (the request counts) and score it."""

    def is_watchlisted(self, *, customer) -> bool:
        """Whether a live watch-list entry names the customer."""

    def listed_at(self, *, customer, at):
        """An `Exists` expression: a watch-list entry named `customer` at time `at` (both may
        be `OuterRef`s), for set-based reads."""


@cache
def risk_assessor() -> RiskAssessor:
    return import_string(settings.REFUND_DESK["RISK_ASSESSOR"])
