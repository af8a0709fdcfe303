"""The refund lifecycle's timers (`refunds.tasks`): return-window expiry and the
`awaiting_customer` time-out, and what they leave alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from refunds import services as refunds
from refunds import tasks
from refunds.models import RefundEvent, RefundRequest, ReturnParcel
from tests.notifications.conftest import evaluated, memory_sms  # noqa: F401 - the autouse fixture

pytestmark = pytest.mark.django_db
State = RefundRequest.State


def test_a_return_past_its_deadline_is_cancelled_and_the_customer_told(django_capture_on_commit_callbacks, memory_sms):  # noqa: F811
    late = evaluated(kind="return_and_refund")
    on_time = evaluated(kind="return_and_refund")
    assert late.state == on_time.state == State.AWAITING_RETURN
    ReturnParcel.objects.filter(request=late).update(deadline=timezone.now() - timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.expire_returns() == 1

    late.refresh_from_db()
    on_time.refresh_from_db()
    assert late.state == State.CANCELLED
    assert on_time.state == State.AWAITING_RETURN
    assert list(Notification.objects.filter(event="return_expired").values_list("refund_id", flat=True).distinct()) == [late.pk]
    assert any("no parcel arrived within the return window" in m["body"] for m in memory_sms) or any(
        "退货期限内未收到包裹" in m["body"] for m in memory_sms
    )
    # a second run finds nothing more to do
    assert tasks.expire_returns() == 0


def test_an_unanswered_question_goes_back_to_review_after_the_timeout(support, settings):
    settings.REFUND_DESK = {**settings.REFUND_DESK, "AWAITING_CUSTOMER_TIMEOUT_HOURS": 72}
    asked_long_ago = evaluated(reason="not_as_described")
    asked_recently = evaluated(reason="not_as_described")
    offered = evaluated(reason="not_as_described")
    for refund in (asked_long_ago, asked_recently):
        refunds.refund_ask_customer(refund_id=refund.pk, actor=support, question="A photo of the label, please?")
    refunds.refund_offer_alternative(
        refund_id=offered.pk, actor=support, alternative={"kind": "partial", "description": "Keep it for 20% back."}
    )
    RefundRequest.objects.filter(pk__in=[asked_long_ago.pk, offered.pk]).update(
        state_changed_at=timezone.now() - timedelta(hours=73)
    )

    assert tasks.time_out_awaiting_customer() == 1

    states = dict(
        RefundRequest.objects.filter(pk__in=[asked_long_ago.pk, asked_recently.pk, offered.pk]).values_list("pk", "state")
    )
    assert states == {
        asked_long_ago.pk: State.UNDER_REVIEW,
        asked_recently.pk: State.AWAITING_CUSTOMER,
        offered.pk: State.AWAITING_CUSTOMER,  # declining an offer is the customer's call
    }
    event = RefundEvent.objects.filter(request=asked_long_ago).order_by("-pk").first()
    assert (event.actor_kind, event.to_state, event.note) == ("system", State.UNDER_REVIEW, "no answer in time")
