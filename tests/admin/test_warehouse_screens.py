"""The warehouse: parcel queue, scan page and inspection, as a scanner drives them."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from refunds.models import Inspection, Payout, RefundEvent, RefundRequest, ReturnParcel
from tests.admin.conftest import awaiting_return_request

pytestmark = pytest.mark.django_db

State = RefundRequest.State


@pytest.fixture
def wh(client, warehouse_user):
    client.force_login(warehouse_user)
    return client


def test_parcel_queue_lists_expected_parcels_without_prices_or_pii(wh):
    refund = awaiting_return_request()
    response = wh.get(reverse("admin:refunds_returnparcel_changelist"))
    body = response.content.decode()
    assert refund.return_parcel.return_code in body
    assert str(refund.amount_requested) not in body
    assert refund.customer.phone not in body and refund.customer.name not in body
    assert 'id="scan-link"' in body


def test_scan_receives_the_parcel_at_once_then_asks_for_the_inspection(wh, warehouse_user):
    refund = awaiting_return_request()
    response = wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": refund.return_parcel.return_code})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:refunds_returnparcel_inspect", args=[refund.pk])
    refund.refresh_from_db()
    assert refund.state == State.RECEIVED
    assert ReturnParcel.objects.get(request=refund).received_by == warehouse_user
    page = wh.get(response["Location"]).content.decode()
    assert "SKU-1" in page and "unopened" in page and "wrong_item" in page
    assert str(refund.amount_requested) not in page


def test_scan_by_tracking_number(wh):
    refund = awaiting_return_request()
    ReturnParcel.objects.filter(request=refund).update(carrier="sf", tracking_number="SF777000111")
    wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": " SF777000111 "})
    refund.refresh_from_db()
    assert refund.state == State.RECEIVED


def test_unknown_code_says_so_and_changes_nothing(wh):
    refund = awaiting_return_request()
    events = RefundEvent.objects.count()
    response = wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": "000000000000"}, follow=True)
    assert "No return is expected with code or tracking number" in response.content.decode()
    refund.refresh_from_db()
    assert refund.state == State.AWAITING_RETURN
    assert RefundEvent.objects.count() == events


def test_scanning_twice_says_already_received_and_changes_nothing(wh):
    refund = awaiting_return_request()
    code = refund.return_parcel.return_code
    wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": code})
    received_at = ReturnParcel.objects.get(request=refund).received_at
    events = RefundEvent.objects.count()
    response = wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": code}, follow=True)
    assert "already received" in response.content.decode()
    assert ReturnParcel.objects.get(request=refund).received_at == received_at
    assert RefundEvent.objects.count() == events


def test_passed_inspection_with_photo_makes_it_ready_for_payout(wh, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": refund.return_parcel.return_code})
    photo = SimpleUploadedFile("box.jpg", b"\xff\xd8\xff fake jpeg", content_type="image/jpeg")
    response = wh.post(
        reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]),
        {"grade": "opened", "disposition": "restock", "note": "box dented", "photo": photo},
    )
    assert response.status_code == 302
    refund.refresh_from_db()
    assert refund.state == State.READY_FOR_PAYOUT
    inspection = Inspection.objects.get(request=refund)
    assert inspection.passed and inspection.photo.name.endswith(".jpg")
    assert Payout.objects.filter(request=refund).exists()


def test_failed_inspection_goes_back_to_support_without_payout(wh):
    refund = awaiting_return_request()
    wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": refund.return_parcel.return_code})
    wh.post(reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]), {"grade": "used", "disposition": "dispose"})
    refund.refresh_from_db()
    assert refund.state == State.UNDER_REVIEW
    assert "inspection failed" in refund.escalation_reason
    assert not Payout.objects.filter(request=refund).exists()


def test_inspection_before_the_parcel_is_received_is_refused(wh):
    refund = awaiting_return_request()
    response = wh.post(
        reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]), {"grade": "unopened", "disposition": "restock"}
    )
    assert response.status_code == 200
    assert "only a received parcel is inspected" in response.content.decode()
    assert not Inspection.objects.filter(request=refund).exists()
