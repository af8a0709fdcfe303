"""The order import on the orders screens: who may use it, its template, its errors, and
that it makes orders the way the channel API does (order_upsert), or none at all."""

import io
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone

from config.actors import Actor
from orders import services
from orders.models import Customer, Order, OrderEvent, OrderLine, Payment
from orders.resources import COLUMNS
from tests.factories import ChannelFactory, UserFactory
from tests.test_spreadsheets import GOOD, as_csv, as_xlsx, row

pytestmark = pytest.mark.django_db

IMPORT = reverse("admin:orders_order_import")
ORDERS = reverse("admin:orders_order_changelist")


def template(fmt):
    return reverse("admin:orders_order_import_template", args=[fmt])


@pytest.fixture
def shop(db):
    return ChannelFactory(name="shop")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def upload(content: bytes, name: str) -> io.BytesIO:
    f = io.BytesIO(content)
    f.name = name
    return f


def nothing_written():
    return not (Order.objects.exists() or OrderLine.objects.exists() or Payment.objects.exists() or Customer.objects.exists())


def preview_and_confirm(client, content, name="orders.csv"):
    preview = client.post(IMPORT, {"file": upload(content, name)})
    assert preview.status_code == 200, preview.content.decode()[-2000:]
    return client.post(IMPORT, {"confirm": "1", "token": preview.context["token"], "fmt": preview.context["fmt"]})


# --- who imports ---------------------------------------------------------------------------


def test_the_administrator_finds_the_import_on_the_orders_list(admin_client, shop):
    page = admin_client.get(ORDERS).content.decode()
    assert IMPORT in page
    assert "shop" in admin_client.get(IMPORT).content.decode()  # the channels a row may name
    assert IMPORT not in admin_client.get(reverse("admin:refunds_payout_changelist")).content.decode()


@pytest.mark.parametrize("role", ["finance", "support", "warehouse", "risk"])
def test_every_role_is_refused_the_import_and_nothing_is_written(client, shop, role, admin_user):
    # A staged upload of the administrator's, which another role must not be able to confirm.
    client.force_login(admin_user)
    token = client.post(IMPORT, {"file": upload(as_csv(GOOD), "orders.csv")}).context["token"]
    client.force_login(UserFactory(username=f"{role}-imp", role=role))

    assert client.get(IMPORT).status_code == 403
    assert client.post(IMPORT, {"file": upload(as_csv(GOOD), "orders.csv")}).status_code == 403
    assert client.post(IMPORT, {"confirm": "1", "token": token, "fmt": "csv"}).status_code == 403
    assert client.get(template("xlsx")).status_code == 403
    if role != "warehouse":  # the warehouse does not see the orders list at all
        assert IMPORT not in client.get(ORDERS).content.decode()
    assert not Order.objects.exists()


# --- the template --------------------------------------------------------------------------


def test_the_xlsx_template_has_the_columns_explains_them_and_lists_the_channels(admin_client, shop):
    ChannelFactory(name="marketplace")
    response = admin_client.get(template("xlsx"))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="orders-import-template.xlsx"'
    wb = openpyxl.load_workbook(io.BytesIO(response.content))
    assert wb.active.title == "orders"
    assert [c.value for c in wb.active[1]] == COLUMNS and wb.active.max_row == 1
    help_rows = [[c for c in r if c is not None] for r in wb["help"].iter_rows(values_only=True)]
    assert [r[0] for r in help_rows[1 : 1 + len(COLUMNS)]] == COLUMNS
    assert help_rows[-1] == ["channels", "marketplace, shop"]


def test_the_template_filled_in_imports(admin_client, shop):
    wb = openpyxl.load_workbook(io.BytesIO(admin_client.get(template("xlsx")).content))
    for r in GOOD:
        wb.active.append([r[c] for c in COLUMNS])
    buf = io.BytesIO()
    wb.save(buf)

    done = preview_and_confirm(admin_client, buf.getvalue(), "filled.xlsx")

    assert done.status_code == 302
    assert Order.objects.get(number="IMP-1").lines.count() == 2


def test_the_csv_template_is_the_header_only(admin_client):
    response = admin_client.get(template("csv"))
    assert response.content.decode("utf-8-sig").strip() == ",".join(COLUMNS)
    assert admin_client.get(template("pdf")).status_code == 404


# --- errors: every bad row named, nothing written ----------------------------------------------


def test_an_unknown_channel_lists_the_valid_ones(admin_client, shop):
    ChannelFactory(name="marketplace")

    response = admin_client.post(IMPORT, {"file": upload(as_csv([row(channel="web store")]), "orders.csv")})

    assert response.status_code == 400
    html = response.content.decode()
    assert "unknown channel &#x27;web store&#x27;; the channels are: marketplace, shop" in html
    assert nothing_written()


def test_a_file_with_bad_rows_among_good_ones_names_each_bad_row_and_writes_none(admin_client, shop):
    rows = [
        *GOOD,
        row(order_number="IMP-2", quantity="0"),
        row(order_number="IMP-3", sku="S3", unit_price="10.00", payment_amount="25.00", quantity="2"),
        row(order_number="IMP-4", quantity="2000000", unit_price="0.01", payment_amount="20005.00"),
    ]

    response = admin_client.post(IMPORT, {"file": upload(as_csv(rows), "orders.csv")})

    assert response.status_code == 400
    numbers = [r.number for r in response.context["outcome"].result.invalid_rows]
    assert numbers == [3, 5], numbers  # quantity 0; a quantity over the limit
    html = response.content.decode()
    assert "Nothing was imported" in html and "more than 1,000,000" in html
    assert "token" not in response.context
    assert nothing_written()


def test_an_amount_past_the_money_column_is_a_row_error_not_a_server_error(admin_client, shop):
    huge = row(quantity="1000", unit_price="9999999999.99", shipping_fee="0", payment_amount="9999999999990.00")

    response = admin_client.post(IMPORT, {"file": upload(as_csv([huge]), "orders.csv")})

    assert response.status_code == 400 and "more than a line can hold" in response.content.decode()
    assert nothing_written()


def test_an_order_that_arrives_between_the_dry_run_and_the_confirm_fails_the_whole_file(admin_client, shop):
    rows = [*GOOD, row(order_number="IMP-2", sku="X", quantity="1", unit_price="10.00", payment_amount="15.00")]
    preview = admin_client.post(IMPORT, {"file": upload(as_csv(rows), "orders.csv")})
    assert preview.status_code == 200
    # Meanwhile the channel sends IMP-2 itself.
    services.order_upsert(
        channel=shop,
        actor=Actor.for_channel(shop),
        number="IMP-2",
        data={
            "customer": {"external_id": "C-77"},
            "currency": "CNY",
            "placed_at": timezone.now(),
            "lines": [{"sku": "X", "quantity": 1, "unit_price": Decimal("10.00")}],
        },
    )

    response = admin_client.post(IMPORT, {"confirm": "1", "token": preview.context["token"], "fmt": "csv"})

    assert response.status_code == 400 and "already exists" in response.content.decode()
    assert list(Order.objects.values_list("number", flat=True)) == ["IMP-2"]  # IMP-1 was not written either


# --- one way to make an order ---------------------------------------------------------------


def test_an_imported_order_is_received_paid_and_refreshes_the_customers_risk_like_an_api_order(
    admin_client, shop, admin_user, monkeypatch, django_capture_on_commit_callbacks
):
    refreshed = []
    monkeypatch.setattr("risk.services.customer_changed", lambda *, customer_id: refreshed.append(customer_id))

    with django_capture_on_commit_callbacks(execute=True):
        preview = admin_client.post(IMPORT, {"file": upload(as_xlsx(GOOD), "orders.xlsx")})
    assert preview.status_code == 200 and refreshed == [], "a dry run refreshes nothing"
    assert not OrderEvent.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(IMPORT, {"confirm": "1", "token": preview.context["token"], "fmt": "xlsx"})

    assert done.status_code == 302
    order = Order.objects.get(number="IMP-1")
    assert list(OrderEvent.objects.filter(order=order).order_by("pk").values_list("from_state", "to_state", "actor", "note")) == [
        ("", "pending_payment", admin_user.username, "order received"),
        ("pending_payment", "paid", admin_user.username, "imported from a spreadsheet"),
    ]
    assert refreshed == [order.customer_id]
