"""Reads for staff accounts."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import StaffSession
from refunds import roles


@dataclass(frozen=True)
class TwoFactorState:
    required: bool  # the rule of refunds/roles.py
    enrolled: bool  # has a confirmed authenticator


def two_factor_state(user) -> TwoFactorState:
    """Whether `user` must use a second factor and whether they have one, in one query."""
    required, enrolled = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            required=ExpressionWrapper(roles.two_factor_required_expression(), output_field=BooleanField()),
            enrolled=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
        )
        .values_list("required", "enrolled")
        .get()
    )
    return TwoFactorState(required=bool(required), enrolled=bool(enrolled))


def authenticator_for(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def sessions_of(user):
    """The user's live sessions, most recently seen first."""
    return StaffSession.objects.filter(user=user, expire_date__gt=timezone.now()).order_by("-last_seen_at", "-pk")
