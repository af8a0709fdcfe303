"""Settings for bench/api_bench.py only: the product's settings plus the bare endpoint's URLs."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"
