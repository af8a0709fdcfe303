"""Tells drf-spectacular how channels authenticate, so the schema documents the Bearer key."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ChannelKeyScheme(OpenApiAuthenticationExtension):
    target_class = "orders.api.authentication.ChannelKeyAuthentication"
    name = "channelKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "The channel key printed by `create_channel`."}


def add_throttle_responses(result, generator, request, public):
    """Every operation can answer 429 (settings.API_THROTTLE_RATES): say so, with Retry-After."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["responses"].setdefault(
                "429",
                {
                    "description": "Over a limit of the API (see its description). Nothing was done; "
                    "try again after the seconds in `Retry-After`.",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"detail": {"type": "string"}},
                                "required": ["detail"],
                            }
                        }
                    },
                },
            )
    return result
