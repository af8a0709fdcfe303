"""Spreadsheets: exports finance reconciles on (read back with openpyxl / csv) and the
all-or-nothing order import with its dry run."""

import csv
import io
from datetime import datetime
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone

from config.actors import Actor
from orders.models import Customer, Order, OrderEvent, OrderLine, Payment
from orders.resources import COLUMNS, import_orders
from refunds.models import Payout, RefundRequest
from refunds.resources import PayoutResource, write_xlsx
from tests.factories import ChannelFactory, CustomerFactory, RefundRequestFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:refunds_payout_changelist")
PAYOUT_HEADERS = [
    "payout no.",
    "request no.",
    "order no.",
    "channel",
    "customer",
    "method",
    "amount",
    "currency",
    "state",
    "approved by",
    "approved at",
    "succeeded at",
    "gateway reference",
    "method code",
    "state code",
]


def payouts(amounts, state=Payout.State.PENDING_APPROVAL):
    req = RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT)
    return Payout.objects.bulk_create(
        [Payout(request=req, method="original_payment", amount=Decimal(a), currency="CNY", state=state) for a in amounts]
    )


def read_xlsx(content: bytes) -> list[list]:
    wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return [list(r) for r in wb.active.iter_rows(values_only=True)]


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def fin(client, finance_user):
    client.force_login(finance_user)
    return client


# --- exports -----------------------------------------------------------------------------


def test_xlsx_export_of_selected_payouts_reads_back_with_the_right_rows_and_sum(fin):
    a, b, c = payouts(["10.10", "20.25", "30.00"])

    response = fin.post(CHANGELIST, {"action": "export_xlsx", "_selected_action": [a.pk, c.pk], "index": 0})

    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'payouts-selected-{timezone.localdate()}.xlsx"')
    rows = read_xlsx(body(response))
    assert rows[0] == PAYOUT_HEADERS
    assert [r[0] for r in rows[1:]] == [str(a), str(c)]  # b was not selected
    assert sum(Decimal(str(r[6])) for r in rows[1:]) == Decimal("40.10")
    assert rows[1][1] == a.request.number and rows[1][2] == a.request.order.number and rows[1][7] == "CNY"


def test_csv_export_of_the_whole_filter_streams_every_matching_row(fin):
    pending = payouts([f"{i}.01" for i in range(1, 151)])  # more than one page
    payouts(["999.00"], state=Payout.State.SUCCEEDED)  # not in the default filter

    response = fin.post(CHANGELIST, {"action": "export_csv", "_selected_action": [pending[0].pk], "index": 0, "select_across": 1})

    assert response.streaming
    rows = list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))
    assert rows[0] == PAYOUT_HEADERS
    assert len(rows) == 151
    assert sum(Decimal(r[6]) for r in rows[1:]) == sum(p.amount for p in pending)


def test_export_link_uses_the_changelist_filter(fin):
    payouts(["1.00", "2.00"])
    (failed,) = payouts(["5.55"], state=Payout.State.FAILED)

    response = fin.get(reverse("admin:refunds_payout_export", args=["xlsx"]) + "?state=failed")

    rows = read_xlsx(body(response))
    assert [r[0] for r in rows[1:]] == [str(failed)] and rows[1][6] == 5.55


def test_request_export_filters_by_state(fin):
    ready = RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT)
    RefundRequestFactory(state=RefundRequest.State.UNDER_REVIEW)

    response = fin.get(reverse("admin:refunds_refundrequest_export"), {"state": "ready_for_payout", "format": "csv"})

    rows = list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))
    assert rows[0][:3] == ["request no.", "order no.", "channel"]
    assert [r[0] for r in rows[1:]] == [ready.number]
    assert Decimal(rows[1][7]) == ready.amount_requested


def test_request_export_is_on_the_requests_list_not_under_reconciliation_and_checks_its_filter(fin):
    export = reverse("admin:refunds_refundrequest_export")
    assert export in fin.get(reverse("admin:refunds_refundrequest_changelist")).content.decode()
    assert 'id="request-export-form"' not in fin.get(reverse("admin:refunds_payout_reconciliation")).content.decode()
    assert 'id="request-export-form"' in fin.get(export).content.decode()

    bad = fin.get(export, {"created_from": "not a date", "format": "csv"})
    assert bad.status_code == 400 and "Please correct the filter" in bad.content.decode()


def test_export_escapes_cells_a_spreadsheet_would_run_as_formulas(fin):
    (p,) = payouts(["3.00"])
    Customer.objects.filter(pk=p.request.customer_id).update(name='=HYPERLINK("http://evil","x")')

    response = fin.post(CHANGELIST, {"action": "export_csv", "_selected_action": [p.pk], "index": 0})

    row = list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))[1]
    assert row[4] == '\'=HYPERLINK("http://evil","x")'


def test_xlsx_writer_does_not_build_the_sheet_in_memory(tmp_path):
    payouts(["1.00"] * 5)
    path = tmp_path / "out.xlsx"
    with open(path, "wb") as fh:
        n = write_xlsx(
            PayoutResource(),
            Payout.objects.select_related("request__order", "request__customer", "request__channel", "approved_by").order_by(
                "pk"
            ),
            fh,
        )
    assert n == 5 and len(read_xlsx(path.read_bytes())) == 6


# --- order import ------------------------------------------------------------------------


def row(**over):
    base = {
        "order_number": "IMP-1",
        "channel": "shop",
        "customer_external_id": "C-9",
        "customer_name": "王小明",
        "customer_phone": "+8613800000009",
        "placed_at": "2026-11-20 10:00",
        "currency": "CNY",
        "sku": "SKU-A",
        "name": "Mug",
        "quantity": "2",
        "unit_price": "10.50",
        "shipping_fee": "5.00",
        "payment_method": "alipay",
        "payment_reference": "PAY-IMP-1",
        "payment_amount": "41.00",
    }
    return {**base, **over}


def as_csv(rows, columns=COLUMNS) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def typed(column, value):
    """Cells as a person types them into Excel: numbers as numbers, a date as a date."""
    if column in ("quantity",):
        return int(value)
    if column in ("unit_price", "shipping_fee", "payment_amount"):
        return float(value)
    if column == "placed_at":
        return datetime.fromisoformat(value)
    return value


def as_xlsx(rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(COLUMNS)
    for r in rows:
        ws.append([typed(c, r[c]) for c in COLUMNS])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


GOOD = [row(), row(sku="SKU-B", name="Plate", quantity="1", unit_price="15.00")]


@pytest.fixture
def shop(db):
    return ChannelFactory(name="shop")


@pytest.fixture
def admin_actor(admin_user):
    return Actor.for_user(admin_user)


def nothing_written():
    return not Order.objects.exists() and not OrderLine.objects.exists() and not Payment.objects.exists()


def test_dry_run_previews_and_writes_nothing(shop, admin_actor):
    outcome = import_orders(content=as_csv(GOOD), fmt="csv", actor=admin_actor, dry_run=True)

    assert outcome.ok and outcome.orders == 1 and outcome.lines == 2
    assert nothing_written() and not Customer.objects.exists()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_import_creates_paid_orders_with_lines_payment_and_history(shop, admin_actor, fmt, admin_user):
    content = as_csv(GOOD) if fmt == "csv" else as_xlsx(GOOD)

    outcome = import_orders(content=content, fmt=fmt, actor=admin_actor, dry_run=False)

    assert outcome.ok, (outcome.file_error, outcome.result and outcome.result.invalid_rows)
    order = Order.objects.get(channel=shop, number="IMP-1")
    assert order.state == Order.State.PAID and order.paid_total == Decimal("41.00")
    assert order.customer.external_id == "C-9" and order.customer.name == "王小明"
    assert sorted(order.lines.values_list("sku", "quantity", "line_total")) == [
        ("SKU-A", 2, Decimal("21.00")),
        ("SKU-B", 1, Decimal("15.00")),
    ]
    assert order.payment.amount == Decimal("41.00") and order.payment.reference == "PAY-IMP-1"
    # Made like the channel API's orders: received, then paid, both by whoever imported it.
    assert list(OrderEvent.objects.filter(order=order).order_by("pk").values_list("to_state", "actor", "note")) == [
        ("pending_payment", admin_user.username, "order received"),
        ("paid", admin_user.username, "imported from a spreadsheet"),
    ]


def test_an_existing_customer_is_reused(shop, admin_actor):
    existing = CustomerFactory(channel=shop, external_id="C-9")
    import_orders(content=as_csv(GOOD), fmt="csv", actor=admin_actor, dry_run=False)
    assert Order.objects.get().customer == existing


def errors_of(outcome) -> dict[int, str]:
    return {r.number: " ".join(m for ms in r.error_dict.values() for m in ms) for r in outcome.result.invalid_rows}


@pytest.mark.parametrize(
    "bad_row, expected",
    [
        (row(order_number="IMP-2", quantity="two"), "not a whole number"),
        (row(order_number="IMP-2", unit_price="1O.00"), "not an amount"),
        (row(order_number="IMP-2", unit_price="10.123"), "more than 2 decimal places"),
        (row(order_number="IMP-2", channel="nowhere"), "unknown channel 'nowhere'"),
        (row(order_number="IMP-2", placed_at="yesterday"), "not a date"),
        (row(order_number="IMP-2", payment_amount="1.00", quantity="1", shipping_fee="0"), "is not the lines plus shipping"),
        (row(sku="SKU-A"), "appears twice"),  # a third row for IMP-1 repeating SKU-A
    ],
)
def test_one_bad_row_means_nothing_is_imported_and_the_row_is_named(shop, admin_actor, bad_row, expected):
    content = as_csv([*GOOD, bad_row])

    outcome = import_orders(content=content, fmt="csv", actor=admin_actor, dry_run=False)

    assert not outcome.ok
    errors = errors_of(outcome)
    assert 3 in errors and expected in errors[3], errors
    assert nothing_written()


def test_an_order_that_already_exists_is_refused(shop, admin_actor):
    import_orders(content=as_csv(GOOD), fmt="csv", actor=admin_actor, dry_run=False)
    again = import_orders(
        content=as_csv([*GOOD, row(order_number="IMP-9", payment_amount="15.50", quantity="1", sku="X")]),
        fmt="csv",
        actor=admin_actor,
        dry_run=False,
    )
    assert not again.ok and "already exists" in errors_of(again)[1]
    assert Order.objects.count() == 1  # IMP-9 was not imported either


@pytest.mark.parametrize(
    "content, fmt, expected",
    [
        (b"this is not a zip", "xlsx", "not a valid .xlsx"),
        (as_csv(GOOD, columns=[c for c in COLUMNS if c != "sku"]), "csv", "missing columns: sku"),
        (as_csv(GOOD).replace(b"order_number", b"order_no"), "csv", "unknown columns: order_no"),
        (b"", "csv", "empty"),
        (as_csv([]), "csv", "no rows"),
        (b"\xff\xfe\x00bad", "csv", "not UTF-8"),
        (as_csv(GOOD), "pdf", "Unsupported format"),
    ],
)
def test_a_bad_file_gets_a_clear_message_and_writes_nothing(shop, admin_actor, content, fmt, expected):
    outcome = import_orders(content=content, fmt=fmt, actor=admin_actor, dry_run=False)
    assert not outcome.ok and expected in outcome.file_error
    assert nothing_written()


def test_import_pages_preview_then_confirm(client, admin_user, shop):
    client.force_login(admin_user)
    url = reverse("admin:orders_order_import")
    upload = io.BytesIO(as_xlsx(GOOD))
    upload.name = "orders.xlsx"

    preview = client.post(url, {"file": upload})

    assert preview.status_code == 200 and "would create 1 orders with 2 lines" in preview.content.decode()
    assert nothing_written()
    token, fmt = preview.context["token"], preview.context["fmt"]

    done = client.post(url, {"confirm": "1", "token": token, "fmt": fmt}, follow=True)

    assert any("Imported 1 orders (2 lines)" in str(m) for m in done.context["messages"])
    assert Order.objects.filter(number="IMP-1").exists()
    # The staged file is gone: the same token can't import twice.
    again = client.post(url, {"confirm": "1", "token": token, "fmt": fmt}, follow=True)
    assert any("expired" in str(m) for m in again.context["messages"]) and Order.objects.count() == 1


def test_import_page_shows_row_errors_for_a_bad_file(client, admin_user, shop):
    client.force_login(admin_user)
    upload = io.BytesIO(as_csv([row(quantity="-1")]))
    upload.name = "orders.csv"

    response = client.post(reverse("admin:orders_order_import"), {"file": upload})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported" in html and "not a whole number above 0" in html
    assert "token" not in response.context or not response.context["token"]
    assert nothing_written()


def test_a_token_for_another_user_or_a_path_is_refused(client, admin_user, shop):
    client.force_login(admin_user)
    for token in ["../../etc/passwd", "0" * 31 + "g"]:
        response = client.post(reverse("admin:orders_order_import"), {"confirm": "1", "token": token, "fmt": "csv"}, follow=True)
        assert any("expired" in str(m) for m in response.context["messages"])
    assert nothing_written()


# --- money as numbers, codes with their labels, names that say what is in the file -----------


def _sheet(content: bytes):
    return openpyxl.load_workbook(io.BytesIO(content)).active  # not read-only: cells keep their formats


def test_xlsx_money_is_a_numeric_cell_formatted_0_00_whose_sum_is_the_confirmation_pages_total(fin):
    pending = payouts(["1234.50", "0.10", "20.00"])
    Payout.objects.filter(pk=pending[1].pk).update(method="store_credit")
    screen = fin.post(
        CHANGELIST, {"action": "approve_selected", "_selected_action": [pending[0].pk], "index": 0, "select_across": 1}
    )
    (screen_total,) = screen.context["preview"].selected.currency_rows()

    response = fin.get(reverse("admin:refunds_payout_export", args=["xlsx"]) + "?state=pending_approval")

    assert response["Content-Disposition"].endswith(f'filename="payouts-pending_approval-{timezone.localdate()}.xlsx"')
    ws = _sheet(body(response))
    header = [c.value for c in ws[1]]
    assert header == PAYOUT_HEADERS
    amount, state, state_code = header.index("amount") + 1, header.index("state") + 1, header.index("state code") + 1
    method, method_code = header.index("method") + 1, header.index("method code") + 1
    cells = [ws.cell(row=r, column=amount) for r in range(2, ws.max_row + 1)]
    assert len(cells) == 3
    assert all(c.data_type == "n" and c.number_format == "0.00" for c in cells)
    assert sum(Decimal(str(c.value)) for c in cells) == screen_total[1] == Decimal("1254.60")
    assert {ws.cell(row=r, column=state).value for r in range(2, ws.max_row + 1)} == {"Pending approval"}
    assert {ws.cell(row=r, column=state_code).value for r in range(2, ws.max_row + 1)} == {"pending_approval"}
    assert [ws.cell(row=r, column=method).value for r in range(2, 5)] == ["Original payment", "Store credit", "Original payment"]
    assert [ws.cell(row=r, column=method_code).value for r in range(2, 5)] == [
        "original_payment",
        "store_credit",
        "original_payment",
    ]


def test_the_csv_keeps_its_bom_and_is_named_for_its_filter(fin):
    (p,) = payouts(["5.50"], state=Payout.State.FAILED)
    Payout.objects.filter(pk=p.pk).update(method="coupon")

    response = fin.get(reverse("admin:refunds_payout_export", args=["csv"]), {"state": "failed", "method": "coupon"})

    raw = body(response)
    assert raw.startswith("\ufeff".encode())
    assert response["Content-Disposition"].endswith(f'filename="payouts-failed-coupon-{timezone.localdate()}.csv"')
    header, row = csv_rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(csv_rows) == 2
    assert (row[header.index("amount")], row[header.index("state")], row[header.index("state code")]) == (
        "5.50",
        "Failed",
        "failed",
    )
    assert (row[header.index("method")], row[header.index("method code")]) == ("Coupon", "coupon")


def test_the_request_export_shows_labels_with_the_codes_in_their_own_columns(fin):
    ready = RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT)

    response = fin.get(reverse("admin:refunds_refundrequest_export"), {"state": "ready_for_payout", "format": "xlsx"})

    assert response["Content-Disposition"].endswith(f'filename="refund-requests-ready_for_payout-{timezone.localdate()}.xlsx"')
    ws = _sheet(body(response))
    header = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(header, ws[2], strict=True)}
    assert row["state"].value == str(RefundRequest.State.READY_FOR_PAYOUT.label) and row["state code"].value == "ready_for_payout"
    assert row["reason"].value == ready.get_reason_display() and row["reason code"].value == ready.reason
    assert row["kind"].value == ready.get_kind_display() and row["kind code"].value == ready.kind
    assert row["method code"].value == ready.refund_method
    money = row["amount requested"]
    assert money.data_type == "n" and money.number_format == "0.00"
    assert Decimal(str(money.value)) == ready.amount_requested


def test_the_reconciliation_xlsx_has_numeric_totals(fin):
    (p,) = payouts(["12.30"], state=Payout.State.SUCCEEDED)
    Payout.objects.filter(pk=p.pk).update(succeeded_at=timezone.now())
    day = timezone.localdate()

    response = fin.get(reverse("admin:refunds_payout_reconciliation"), {"start": day, "end": day, "format": "xlsx"})

    ws = _sheet(response.content)
    assert [c.value for c in ws[1]] == ["day", "method", "currency", "count", "total", "method code"]
    total = ws.cell(row=2, column=5)
    assert total.data_type == "n" and total.number_format == "0.00" and Decimal(str(total.value)) == Decimal("12.30")
    assert (ws.cell(row=2, column=2).value, ws.cell(row=2, column=6).value) == ("Original payment", "original_payment")
