"""Writes for staff accounts: a staff member's second factor and sessions.

Each takes the request's user as the actor; none touches another user's devices or sessions.
"""

from django.db import transaction
from django.utils.translation import gettext
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import StaffSession
from config.errors import ActionForbidden
from refunds import roles

RECOVERY_CODES = 10


class TwoFactorRequired(ActionForbidden):
    """The user's role requires a second factor: it can't be turned off."""


def authenticator_pending(*, user) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled (made once, so reloading the page keeps its secret)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def authenticator_confirm(*, user, token: str) -> tuple[TOTPDevice, list[str]] | None:
    """Confirm the pending authenticator with a code from the app; returns it with fresh
    recovery codes (shown once), or None when the code is wrong. Any older authenticator goes."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("pk").first()
        if device is None or not device.verify_token(token):
            return None
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = recovery_codes_renew(user=user)
    return device, codes


def recovery_codes_renew(*, user) -> list[str]:
    """A new set of one-time recovery codes; the old ones stop working."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
        StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def two_factor_disable(*, user) -> None:
    """Remove the authenticator and the recovery codes. Refused where the role requires them."""
    if roles.two_factor_required(user):
        raise TwoFactorRequired(gettext("Your role requires two-factor authentication: it can't be turned off."))
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()


def sessions_end(*, user, handles: list[str] | None = None, except_key: str | None = None) -> int:
    """End the user's sessions named by `handles` (all of them when None), except the one
    with key `except_key`. The browser holding an ended session is signed out at its next request."""
    rows = StaffSession.objects.filter(user=user)
    if handles is not None:
        rows = rows.filter(handle__in=[h for h in handles if h])
    if except_key:
        rows = rows.exclude(session_key=except_key)
    deleted, _ = rows.delete()
    return deleted
