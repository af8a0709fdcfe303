"""What the channel API's limits cost a request, in one process: `GET /api/v1/refunds/`
through Django's test client, 300 times with the limits counted and 300 times with them off,
six alternations, medians. It makes a throwaway channel in DATABASE_URL's database and
deletes it after; the cache is Redis when REDIS_URL is set, local memory otherwise.

    PYTHONPATH=. DB_CONN_MAX_AGE=60 DATABASE_URL=postgres://... [REDIS_URL=redis://...] python bench/api_limits_ab.py
"""

import os
import secrets
import statistics
import time

import django

ON = {"channel_burst": "1000000/s", "channel_sustained": "100000000/min", "failed_auth": "1000/min"}
OFF = {"channel_burst": None, "channel_sustained": None, "failed_auth": None}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.core.cache import caches
    from django.test import Client
    from django.test.utils import setup_test_environment

    from orders.models import Channel, ChannelKey

    setup_test_environment()
    channel = Channel.objects.create(name=f"ab-{secrets.token_hex(4)}", kind="web_store")
    key = f"rd_{secrets.token_urlsafe(32)}"
    ChannelKey.objects.create(channel=channel, slot=1, key_hash=Channel.hash_key(key), key_prefix=key[:8])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    def run(rates, n=300):
        settings.API_THROTTLE_RATES = rates
        start = time.perf_counter()
        for _ in range(n):
            assert client.get("/api/v1/refunds/?order_number=none").status_code == 200
        return (time.perf_counter() - start) / n * 1000

    try:
        run(ON, 100)
        run(OFF, 100)
        on, off = [], []
        for _ in range(6):
            on.append(run(ON))
            off.append(run(OFF))
        med_on, med_off = statistics.median(on), statistics.median(off)
        print(
            f"{type(caches['default']).__name__} ms/request: limits on {med_on:.3f}, off {med_off:.3f}, diff {med_on - med_off:.3f}"
        )
        print("on ", [round(x, 3) for x in on])
        print("off", [round(x, 3) for x in off])
    finally:
        channel.delete()


if __name__ == "__main__":
    main()
