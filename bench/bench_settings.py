"""Settings for bench/api_bench.py only: the test settings (stand-in backends named) plus the bare endpoint's URLs."""

from config.settings_test import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"
