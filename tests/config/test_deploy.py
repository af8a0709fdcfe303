"""Fail closed in production: what a start refuses with DEBUG off, and `check --deploy` clean
with the environment `docs/deploy.md` gives.

The refusals are real starts (`manage.py` in a child process on `config.settings`, the
production module), not calls to the checking function with hand-made settings.
"""

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from tests.conftest import BASE_DIR

DEPLOY_DOC = BASE_DIR / "docs" / "deploy.md"
# What a developer's shell or CI may have set that would change the answer.
# What the test run's own environment must not lend a production start (the browser tests set
# DJANGO_ALLOW_ASYNC_UNSAFE for Playwright in this process, which check --deploy rightly flags).
UNSET = [
    "DEBUG",
    "SECRET_KEY",
    "PAYMENT_GATEWAY_BACKEND",
    "NOTIFY_SMS_BACKEND",
    "EMAIL_BACKEND",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
]


def documented_env() -> dict[str, str]:
    """The production environment block of docs/deploy.md, with a fresh random key."""
    block = re.search(r"## The environment of a production install.*?```sh\n(.*?)```", DEPLOY_DOC.read_text(), re.S)
    env = dict(line.split("=", 1) for line in block.group(1).splitlines() if line.strip())
    assert env["SECRET_KEY"].startswith("<")  # a placeholder, never a key
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def start(args=("check",), **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in UNSET}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(**overrides) -> dict[str, str]:
    env = documented_env()
    # The test's own database and Redis, not the documented hosts.
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name)
        if os.environ.get(name):
            env[name] = os.environ[name]
    return {**env, **overrides}


def test_the_start_is_refused_with_the_default_key_and_debug_off():
    done = start()  # nothing set: the repository's defaults

    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "Refund Desk will not start with DEBUG off: SECRET_KEY is the repository's public default" in done.stderr
    assert "set PAYMENT_GATEWAY_BACKEND, NOTIFY_SMS_BACKEND, EMAIL_BACKEND." in done.stderr


@pytest.mark.parametrize("key", ["short-key", "a" * 60, "django-insecure-" + "x1y2z3" * 10])
def test_a_weak_key_is_refused(key):
    done = start(**production(SECRET_KEY=key))

    assert done.returncode != 0
    assert "SECRET_KEY is too weak" in done.stderr


def test_an_empty_key_is_the_default_and_refused():
    done = start(**production(SECRET_KEY=""))

    assert done.returncode != 0
    assert "SECRET_KEY is the repository's public default" in done.stderr


@pytest.mark.parametrize("missing", ["PAYMENT_GATEWAY_BACKEND", "NOTIFY_SMS_BACKEND", "EMAIL_BACKEND"])
def test_each_backend_must_be_named_with_debug_off(missing):
    env = production()
    env.pop(missing)

    done = start(**env)

    assert done.returncode != 0
    assert (
        f"must be named explicitly, so a deploy never falls back to a stand-in that pretends to pay or send: set {missing}."
        in (done.stderr)
    )
    assert "SECRET_KEY" not in done.stderr.split("ImproperlyConfigured")[-1]


def test_the_demo_starts_with_debug_on_and_the_defaults():
    done = start(DEBUG="1")

    assert done.returncode == 0, done.stderr


def test_check_deploy_is_clean_with_the_documented_environment():
    done = start(("check", "--deploy", "--fail-level", "WARNING"), **production())

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_the_documented_environment_turns_on_https_and_secure_cookies():
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps([s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE, list(s.SECURE_PROXY_SSL_HEADER)]))"
    )
    base = {k: v for k, v in os.environ.items() if k not in UNSET}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **production()},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == '[true, 31536000, true, true, true, true, ["HTTP_X_FORWARDED_PROTO", "https"]]'


@pytest.mark.django_db
def test_plain_http_is_redirected_except_the_health_check(settings):
    from config import settings as production_settings

    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = production_settings.SECURE_REDIRECT_EXEMPT
    client = Client()

    login = client.get("/admin/login/")
    assert login.status_code == 301 and login["Location"].startswith("https://")
    assert client.get("/health/").status_code in (200, 503)  # answered, not redirected


@pytest.mark.django_db
def test_every_page_carries_the_content_security_policy(client):
    policy = client.get("/admin/login/")["Content-Security-Policy"]

    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
