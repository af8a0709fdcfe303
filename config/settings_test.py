"""The test suite's settings: production's, with the stand-ins chosen explicitly.

`pyproject.toml` selects this module, and the processes the tests start (qcluster, gunicorn,
`manage.py`) inherit it through DJANGO_SETTINGS_MODULE. DEBUG stays off, as in production, so
the tests run the code a deploy runs; what a deploy must name (`config/deploy.py`) is named
here, and HTTPS is left to the tests that check it (the test client and the live server speak
plain HTTP).
"""

from config.settings import *  # noqa: F403
from config.settings import EMAIL_BACKEND, NOTIFICATIONS, PAYMENT_GATEWAY

# Not a secret: a key for test databases only, long enough for Django's and our check.
SECRET_KEY = "tests-only-key-never-deployed-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
# The stand-ins, unless the environment names another backend (the e2e tests start clusters
# with a fake SMS provider this way).
PAYMENT_GATEWAY = {**PAYMENT_GATEWAY, "BACKEND": PAYMENT_GATEWAY["BACKEND"] or "refunds.gateways.simulated.SimulatedGateway"}
NOTIFICATIONS = {**NOTIFICATIONS, "SMS_BACKEND": NOTIFICATIONS["SMS_BACKEND"] or "notifications.backends.sms.ConsoleBackend"}
EMAIL_BACKEND = EMAIL_BACKEND or "django.core.mail.backends.console.EmailBackend"

SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
