"""Order imports are capped: refused above IMPORT_MAX_BYTES before parsing, above what an XLSX
may unpack to before unpacking, and at the first row past IMPORT_MAX_ROWS while reading —
with a sentence, and nothing written or staged."""

import io
import tempfile
import zipfile
from pathlib import Path

import openpyxl
import pytest
from django.urls import reverse

from config.actors import Actor
from orders import resources
from orders.resources import import_orders
from tests.factories import ChannelFactory
from tests.test_spreadsheets import GOOD, as_csv, as_xlsx, nothing_written, row

pytestmark = pytest.mark.django_db

IMPORT_PAGE = reverse("admin:orders_order_import")


@pytest.fixture
def shop(db):
    return ChannelFactory(name="shop")


@pytest.fixture
def admin_actor(admin_user):
    return Actor.for_user(admin_user)


def many(n: int) -> list[dict]:
    return [
        row(
            order_number=f"IMP-{i}",
            sku=f"SKU-{i}",
            quantity="1",
            unit_price="10.00",
            payment_amount="15.00",
            payment_reference=f"PAY-{i}",
        )
        for i in range(n)
    ]


def staged_files() -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob("rd-order-import-*"))


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_file_over_the_byte_cap_is_refused_before_it_is_parsed(shop, admin_actor, settings, monkeypatch, fmt):
    content = as_csv(GOOD) if fmt == "csv" else as_xlsx(GOOD)
    settings.IMPORT_MAX_BYTES = len(content) - 1

    def never(*args, **kwargs):
        raise AssertionError("an oversized file was parsed")

    monkeypatch.setattr(resources, "_csv_dataset", never)
    monkeypatch.setattr(resources.openpyxl, "load_workbook", never)
    monkeypatch.setattr(resources.zipfile, "ZipFile", never)

    outcome = import_orders(content=content, fmt=fmt, actor=admin_actor, dry_run=False)

    assert not outcome.ok
    assert outcome.file_error.startswith("The file is ") and "; the limit is " in outcome.file_error
    assert nothing_written()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_rows_past_the_cap_are_refused(shop, admin_actor, settings, fmt):
    settings.IMPORT_MAX_ROWS = 3
    content = as_csv(many(4)) if fmt == "csv" else as_xlsx(many(4))

    outcome = import_orders(content=content, fmt=fmt, actor=admin_actor, dry_run=False)

    assert outcome.file_error == "The file has more than 3 rows; import at most 3 at a time."
    assert nothing_written()
    settings.IMPORT_MAX_ROWS = 4
    at_cap = import_orders(content=content, fmt=fmt, actor=admin_actor, dry_run=True)
    assert at_cap.ok, [r.error_dict for r in at_cap.result.invalid_rows]  # exactly at the cap


def test_an_xlsx_is_read_row_by_row_and_no_further_than_the_cap(shop, admin_actor, settings, monkeypatch):
    settings.IMPORT_MAX_ROWS = 10
    content = as_xlsx(many(2000))
    read = []
    iter_rows = openpyxl.worksheet._read_only.ReadOnlyWorksheet.iter_rows

    def counting(self, *args, **kwargs):
        for r in iter_rows(self, *args, **kwargs):
            read.append(1)
            yield r

    monkeypatch.setattr(openpyxl.worksheet._read_only.ReadOnlyWorksheet, "iter_rows", counting)

    outcome = import_orders(content=content, fmt="xlsx", actor=admin_actor, dry_run=False)

    assert "more than 10 rows" in outcome.file_error
    assert len(read) == 12  # the header, 10 rows, and the one that crossed the cap: not 2,001
    assert nothing_written()


def test_blank_rows_count_too(shop, admin_actor, settings):
    settings.IMPORT_MAX_ROWS = 5
    content = as_csv(GOOD) + b"\r\n" * 50  # 50 empty lines: nothing to import, still read

    outcome = import_orders(content=content, fmt="csv", actor=admin_actor, dry_run=True)

    assert "more than 5 rows" in outcome.file_error


def bomb(unpacked_mb: int) -> bytes:
    """A workbook whose sheet unpacks to `unpacked_mb` MB of rows from a few hundred KB."""
    good = zipfile.ZipFile(io.BytesIO(as_xlsx(GOOD)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in good.infolist():
            data = good.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                head, tail = data.split(b"</sheetData>")
                filler = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * (unpacked_mb * 1024 * 1024 // 48)
                data = head + filler + b"</sheetData>" + tail
            z.writestr(info.filename, data)
    return out.getvalue()


def test_an_xlsx_that_unpacks_huge_is_refused_before_anything_is_unpacked(shop, admin_actor, settings, monkeypatch):
    content = bomb(60)
    assert len(content) < settings.IMPORT_MAX_BYTES  # small on the wire: the byte cap alone would let it in

    def never(*args, **kwargs):
        raise AssertionError("the workbook was opened")

    monkeypatch.setattr(resources.openpyxl, "load_workbook", never)

    outcome = import_orders(content=content, fmt="xlsx", actor=admin_actor, dry_run=False)

    assert outcome.file_error.startswith("The workbook unpacks to 61.3\xa0MB")
    assert outcome.file_error.endswith("; the limit is 50.0\xa0MB.")
    assert nothing_written()


def test_the_import_page_refuses_an_oversized_upload_and_stages_nothing(client, admin_user, shop, settings):
    client.force_login(admin_user)
    settings.IMPORT_MAX_BYTES = 100
    upload = io.BytesIO(as_csv(GOOD))
    upload.name = "orders.csv"
    before = staged_files()

    response = client.post(IMPORT_PAGE, {"file": upload})

    assert response.status_code == 400
    assert "; the limit is 100\xa0bytes." in response.content.decode()
    assert staged_files() == before
    assert nothing_written()


def test_the_import_page_refuses_too_many_rows_and_stages_nothing(client, admin_user, shop, settings):
    client.force_login(admin_user)
    settings.IMPORT_MAX_ROWS = 1
    upload = io.BytesIO(as_xlsx(GOOD))
    upload.name = "orders.xlsx"
    before = staged_files()

    response = client.post(IMPORT_PAGE, {"file": upload})

    assert response.status_code == 400
    assert "The file has more than 1 rows; import at most 1 at a time." in response.content.decode()
    assert staged_files() == before and not response.context.get("token")
    assert nothing_written()
