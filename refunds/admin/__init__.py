"""The staff admin for refunds, one module per role's screens."""

from refunds.admin import finance, policy, requests, warehouse  # noqa: F401
