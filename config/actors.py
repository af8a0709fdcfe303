"""Who does something: a staff user, a sales channel, or the system itself.

Every service takes an `actor`, so the event log always says who moved a request.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    user: Any = None
    channel: Any = None

    @classmethod
    def system(cls) -> "Actor":
        return SYSTEM

    @classmethod
    def for_user(cls, user) -> "Actor":
        return cls(user=user)

    @classmethod
    def for_channel(cls, channel) -> "Actor":
        return cls(channel=channel)

    @property
    def is_system(self) -> bool:
        return self.user is None and self.channel is None

    @property
    def is_user(self) -> bool:
        return self.user is not None

    @property
    def is_channel(self) -> bool:
        return self.channel is not None

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        if self.channel is not None:
            return f"channel:{self.channel.name}"
        return "system"

    def has_perm(self, perm: str) -> bool:
        return self.user is not None and self.user.is_active and self.user.has_perm(perm)


SYSTEM = Actor()
