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


def _inspect_with(wh, refund, name: str, content: bytes, content_type: str) -> None:
    wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": refund.return_parcel.return_code})
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    response = wh.post(
        reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]),
        {"grade": "opened", "disposition": "restock", "photo": upload},
    )
    assert response.status_code == 302


def test_support_opens_the_inspection_photo_from_the_request_page(wh, client, support_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    _inspect_with(wh, refund, "box.jpg", b"\xff\xd8\xff fake jpeg", "image/jpeg")
    photo = Inspection.objects.get(request=refund).photo

    client.force_login(support_user)
    page = client.get(reverse("admin:refunds_refundrequest_change", args=[refund.pk])).content.decode()
    url = reverse("admin:refunds_refundrequest_photo", args=[refund.pk])
    assert f'id="inspection-photo" href="{url}"' in page
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == b"\xff\xd8\xff fake jpeg"
    assert "attachment" not in response["Content-Disposition"]
    # The upload itself is not served anywhere else.
    assert client.get("/" + settings.MEDIA_URL + photo.name).status_code == 404


def test_an_uploaded_page_is_a_download_not_a_page_of_this_site(wh, client, support_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    _inspect_with(wh, refund, "label.html", b"<script>alert(1)</script>", "text/html")

    client.force_login(support_user)
    response = client.get(reverse("admin:refunds_refundrequest_photo", args=[refund.pk]))

    assert response["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response["Content-Security-Policy"]


def test_the_photo_is_refused_to_whoever_may_not_open_the_request(wh, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    _inspect_with(wh, refund, "box.jpg", b"\xff\xd8\xff", "image/jpeg")

    assert wh.get(reverse("admin:refunds_refundrequest_photo", args=[refund.pk])).status_code == 403  # warehouse
    no_photo = awaiting_return_request()
    assert wh.get(reverse("admin:refunds_refundrequest_photo", args=[no_photo.pk])).status_code == 404


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
