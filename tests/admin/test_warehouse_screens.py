"""The warehouse: parcel queue, scan page and inspection, as a scanner drives them."""

import io
import re
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import ExifTags, Image

from refunds.models import Inspection, Payout, RefundEvent, RefundRequest, ReturnParcel
from tests.admin.conftest import awaiting_return_request
from tests.factories import UserFactory

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


def picture(fmt: str = "JPEG", size=(64, 48), *, gps: bool = False) -> bytes:
    """A real picture; with `gps`, EXIF with a location as a phone writes it."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    if gps:
        exif[0x0110] = "Phone X"  # Model
        exif[ExifTags.IFD.GPSInfo] = {1: "N", 2: (30.0, 15.0, 0.0), 3: "E", 4: (120.0, 10.0, 0.0)}
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif.tobytes() if gps else b"")
    return out.getvalue()


def stored_files(root) -> list:
    return [p for p in Path(root).rglob("*") if p.is_file()]


def test_passed_inspection_with_photo_makes_it_ready_for_payout(wh, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": refund.return_parcel.return_code})
    photo = SimpleUploadedFile("box.jpg", picture(), content_type="image/jpeg")
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


def _inspect_with(wh, refund, name: str, content: bytes, content_type: str):
    wh.post(reverse("admin:refunds_returnparcel_scan"), {"code": refund.return_parcel.return_code})
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    return wh.post(
        reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]),
        {"grade": "opened", "disposition": "restock", "photo": upload},
        follow=True,
    )


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_photo_is_stored_under_our_name_without_its_location(wh, settings, tmp_path, fmt):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    original = picture(fmt, gps=True)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the phone's location is there

    _inspect_with(wh, refund, "../../IMG_0042 home.JPG", original, "image/jpeg")

    photo = Inspection.objects.get(request=refund).photo
    name = Path(photo.name)
    assert re.fullmatch(r"[0-9a-f]{32}\.(jpg|png|webp)", name.name) and name.parts[0] == "inspections"
    with photo.open("rb") as f:
        stored = Image.open(io.BytesIO(f.read()))
        assert stored.format == fmt and stored.size == (64, 48)
        assert not stored.getexif() and "exif" not in stored.info and "xmp" not in stored.info
    assert stored_files(tmp_path) == [tmp_path / photo.name]


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, "image/png"),  # a PNG signature, then noise
        ("box.png", b"not a picture at all", "image/png"),
        ("label.html", b"<script>alert(1)</script>", "text/html"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
        ("anim.gif", b"GIF", "image/gif"),  # replaced by a real GIF below: a picture, not an allowed format
        ("cut.jpg", b"JPEG", "image/jpeg"),  # replaced by a truncated JPEG below
    ],
)
def test_a_file_that_is_not_an_allowed_picture_is_refused_and_nothing_is_stored(
    wh, settings, tmp_path, name, content, content_type
):
    settings.MEDIA_ROOT = tmp_path
    if content == b"GIF":
        content = picture("GIF")
    elif content == b"JPEG":
        content = picture("JPEG", size=(400, 300))[:600]
    refund = awaiting_return_request()
    events = RefundEvent.objects.count()

    response = _inspect_with(wh, refund, name, content, content_type)

    assert "This file is not a JPEG, PNG or WebP picture; only photos are accepted." in response.content.decode()
    refund.refresh_from_db()
    assert refund.state == State.RECEIVED
    assert not Inspection.objects.filter(request=refund).exists()
    assert RefundEvent.objects.count() == events + 1  # the scan's "receive", and nothing after it
    assert stored_files(tmp_path) == []


def test_an_oversized_photo_is_refused_before_it_is_decoded(wh, settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    settings.PHOTO_MAX_BYTES = 1000
    refund = awaiting_return_request()

    def never(*args, **kwargs):
        raise AssertionError("an oversized file was handed to Pillow")

    monkeypatch.setattr("config.uploads.Image.open", never)
    response = _inspect_with(wh, refund, "big.png", b"\0" * 1001, "image/png")

    assert "The file is 1001\xa0bytes; the limit is 1000\xa0bytes." in response.content.decode()
    assert not Inspection.objects.filter(request=refund).exists()
    assert stored_files(tmp_path) == []


def test_a_picture_with_too_many_pixels_is_refused(wh, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.PHOTO_MAX_PIXELS = 100 * 100
    refund = awaiting_return_request()

    response = _inspect_with(wh, refund, "wide.png", picture("PNG", size=(200, 100)), "image/png")

    assert "The picture is 200 × 100 pixels; the limit is 10,000 pixels." in response.content.decode()
    assert not Inspection.objects.filter(request=refund).exists()
    assert stored_files(tmp_path) == []


def test_a_photo_of_an_inspection_that_is_refused_leaves_no_file(wh, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()  # not received: the inspection is refused

    upload = SimpleUploadedFile("box.jpg", picture(), content_type="image/jpeg")
    response = wh.post(
        reverse("admin:refunds_returnparcel_inspect", args=[refund.pk]),
        {"grade": "opened", "disposition": "restock", "photo": upload},
    )

    assert "only a received parcel is inspected" in response.content.decode()
    assert stored_files(tmp_path) == []


def test_the_refusal_is_an_error_on_the_photo_field_in_the_reader_language():
    from django.utils import translation

    from config.errors import DomainValidationError
    from config.uploads import clean_photo

    with translation.override("zh-hans"), pytest.raises(DomainValidationError) as refused:
        clean_photo(SimpleUploadedFile("x.png", b"nope"))
    assert list(refused.value.errors) == ["photo"]


def test_support_opens_the_inspection_photo_from_the_request_page(wh, client, support_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    _inspect_with(wh, refund, "box.jpg", picture(), "image/jpeg")
    photo = Inspection.objects.get(request=refund).photo
    with photo.open("rb") as f:
        stored = f.read()

    client.force_login(support_user)
    page = client.get(reverse("admin:refunds_refundrequest_change", args=[refund.pk])).content.decode()
    url = reverse("admin:refunds_refundrequest_photo", args=[refund.pk])
    assert f'id="inspection-photo" href="{url}"' in page
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == stored
    assert "attachment" not in response["Content-Disposition"]
    assert "sandbox" in response["Content-Security-Policy"]
    # The upload itself is not served anywhere else.
    assert client.get("/" + settings.MEDIA_URL + photo.name).status_code == 404


def test_the_warehouse_opens_its_own_inspection_photo(wh, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    _inspect_with(wh, refund, "box.jpg", picture(), "image/jpeg")

    response = wh.get(reverse("admin:refunds_refundrequest_photo", args=[refund.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    no_photo = awaiting_return_request()
    assert wh.get(reverse("admin:refunds_refundrequest_photo", args=[no_photo.pk])).status_code == 404


def test_the_photo_is_refused_to_whoever_may_not_see_the_inspection(wh, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    _inspect_with(wh, refund, "box.jpg", picture(), "image/jpeg")

    client.force_login(UserFactory(username="staff-without-role", is_staff=True))
    assert client.get(reverse("admin:refunds_refundrequest_photo", args=[refund.pk])).status_code == 403


def test_photos_go_through_the_default_storage(wh, settings, tmp_path):
    """S3-style storage is a setting: the photo is written and read through STORAGES["default"]."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    settings.MEDIA_ROOT = tmp_path
    refund = awaiting_return_request()
    _inspect_with(wh, refund, "box.jpg", picture(), "image/jpeg")

    photo = Inspection.objects.get(request=refund).photo
    assert default_storage.exists(photo.name)
    assert stored_files(tmp_path) == []  # not on the disk: in the configured storage
    assert wh.get(reverse("admin:refunds_refundrequest_photo", args=[refund.pk])).status_code == 200


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


def test_an_upload_far_over_the_cap_is_refused_with_its_size_and_never_reaches_the_disk(wh, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.PHOTO_MAX_BYTES = settings.IMPORT_MAX_BYTES = 100_000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10_000  # so the file goes through the temporary-file handler
    refund = awaiting_return_request()
    noise = bytes(range(256)) * (3 * 1024 * 1024 // 256)  # 3 MB of noise called huge.png

    response = _inspect_with(wh, refund, "huge.png", noise, "image/png")

    assert "The file is 3.0\xa0MB; the limit is 97.7\xa0KB." in response.content.decode()
    assert not Inspection.objects.filter(request=refund).exists()
    assert stored_files(tmp_path / "media") == []


def test_the_upload_handler_keeps_at_most_the_cap_and_counts_the_rest(settings, tmp_path):
    from config.uploads import CappedUploadHandler

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.PHOTO_MAX_BYTES = settings.IMPORT_MAX_BYTES = 1000
    handler = CappedUploadHandler()
    handler.new_file("photo", "huge.png", "image/png", None)
    for start in range(0, 64 * 1024, 4096):
        handler.receive_data_chunk(b"x" * 4096, start)

    upload = handler.file_complete(64 * 1024)

    assert upload.size == 64 * 1024  # what arrived, so the cap check refuses it
    assert Path(upload.temporary_file_path()).stat().st_size == 1000  # what was kept
    upload.close()
