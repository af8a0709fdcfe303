"""Tells drf-spectacular how channels authenticate, so the schema documents the Bearer key."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ChannelKeyScheme(OpenApiAuthenticationExtension):
    target_class = "orders.api.authentication.ChannelKeyAuthentication"
    name = "channelKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "The channel key printed by `create_channel`."}
