"""The staff admin for refunds, one module per role's screens."""

from refunds.admin import exports, finance, policy, requests, warehouse  # noqa: F401
