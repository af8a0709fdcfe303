"""The channel API's limits: DRF throttles counted in fixed windows in Django's cache.

DRF's SimpleRateThrottle keeps a list of every request's time in the window and writes the
whole list back on each request: at 1,500 a minute that is a 1,500-element list read and
written per request, and two workers doing it at once lose each other's entries. Here each
window is one counter (`cache.incr`, atomic on Redis), so a request costs one increment
whatever the rate. The rates are read from `settings.API_THROTTLE_RATES` when a throttle is
made, so they can change without a restart of the import. A cache that fails (Redis down)
lets the request through, logged: a limit must not turn a working API into 500s.
"""

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.utils.translation import gettext as _
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle

from orders.models import Channel

log = logging.getLogger(__name__)


def _count(key: str, ttl: int) -> int | None:
    """Add one to the counter `key` (made with a lifetime of `ttl` s); None if the cache failed."""
    backend = caches["default"]
    try:
        if isinstance(backend, RedisCache):
            # One round trip instead of Django's three (EXISTS, INCRBY, and SET at a window's
            # start): create the counter with its lifetime unless it exists, then count. The
            # serializer stores ints as plain numbers, so cache.get reads it back.
            full = backend.make_and_validate_key(key)
            pipe = backend._cache.get_client(full, write=True).pipeline(transaction=False)
            pipe.set(full, 0, ex=ttl, nx=True)
            pipe.incr(full)
            return pipe.execute()[1]
        try:
            return backend.incr(key)
        except ValueError:  # no counter yet in this window
            if backend.add(key, 1, ttl):
                return 1
            return backend.incr(key)
    except Exception:  # noqa: BLE001 - any cache failure; the request goes on unlimited
        log.warning("API throttle: the cache failed on %s; the request is not limited", key, exc_info=True)
        return None


class FixedWindowThrottle(SimpleRateThrottle):
    cache_format = "throttle:%(scope)s:%(ident)s"

    def get_rate(self):
        return settings.API_THROTTLE_RATES.get(self.scope)

    def window(self) -> tuple[int, float]:
        """The current window's number and the seconds until it ends."""
        now = time.time()
        index = int(now // self.duration)
        return index, (index + 1) * self.duration - now

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        index, self.remaining = self.window()
        count = _count(f"{key}:{index}", self.duration + 1)
        return count is None or count <= self.num_requests

    def wait(self):
        # Whole seconds, at least one: Retry-After is an integer, and "0" would invite a retry loop.
        return max(1, math.ceil(self.remaining))


class _ChannelThrottle(FixedWindowThrottle):
    def get_cache_key(self, request, view):
        if not isinstance(request.auth, Channel):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class ChannelBurstThrottle(_ChannelThrottle):
    scope = "channel_burst"


class ChannelSustainedThrottle(_ChannelThrottle):
    scope = "channel_sustained"


class FailedAuthLimit(FixedWindowThrottle):
    """Failed authentications per client IP. Only failures are counted; once an address is
    over the limit, every request from it that brings credentials is refused with 429 until
    the window ends, so a right guess after many wrong ones is not accepted either."""

    scope = "failed_auth"

    def _key(self, request) -> str | None:
        if self.rate is None:
            return None
        index, self.remaining = self.window()
        return f"{self.cache_format % {'scope': self.scope, 'ident': self.get_ident(request)}}:{index}"

    def check(self, request) -> None:
        """Raise 429 when this address has failed too often in the current window."""
        key = self._key(request)
        if key is None:
            return
        try:
            failures = cache.get(key, 0)
        except Exception:  # noqa: BLE001 - as in _count
            log.warning("API throttle: the cache failed on %s; the request is not limited", key, exc_info=True)
            return
        if failures >= self.num_requests:
            raise Throttled(wait=self.wait(), detail=_("Too many failed attempts to authenticate from this address."))

    def failed(self, request) -> None:
        key = self._key(request)
        if key is not None:
            _count(key, self.duration + 1)


def channel_throttled(wait) -> Throttled:
    return Throttled(wait=wait, detail=_("Too many requests from this channel."))
