"""Order import from XLSX/CSV with django-import-export: one row per order line.

import-export reads the file (`base_formats`), runs the rows inside one transaction, keeps
row-level errors in its `Result` and rolls everything back on a dry run or on any error.
This resource only parses cells; `orders.services_import.order_import_rows` checks the file
as a whole and creates the orders, so the file is imported entirely or not at all.
"""

import csv
import io
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from io import BytesIO

import openpyxl
import tablib
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from import_export import fields, resources
from import_export.formats import base_formats
from import_export.instance_loaders import BaseInstanceLoader
from import_export.results import Result
from openpyxl import Workbook

from config.actors import Actor
from config.uploads import too_big
from orders.models import Channel
from orders.services_import import ImportLine, OrderImportError, order_import_rows

COLUMNS = [
    "order_number",
    "channel",
    "customer_external_id",
    "customer_name",
    "customer_phone",
    "placed_at",
    "currency",
    "sku",
    "name",
    "quantity",
    "unit_price",
    "shipping_fee",
    "payment_method",
    "payment_reference",
    "payment_amount",
]
OPTIONAL = {"customer_name", "customer_phone", "name", "shipping_fee"}
FORMATS = {"csv": base_formats.CSV, "xlsx": base_formats.XLSX}
MAX_QUANTITY = 1_000_000  # as the channel API's


class ImportFileError(Exception):
    """The file as a whole can't be read: not a spreadsheet, wrong columns, empty."""


def _too_many_rows() -> ImportFileError:
    limit = settings.IMPORT_MAX_ROWS
    return ImportFileError(_("The file has more than %(max)d rows; import at most %(max)d at a time.") % {"max": limit})


def _capped(rows):
    """`rows` (the header first), refused at the first row past IMPORT_MAX_ROWS, blank ones
    included: the rest of the file is never read."""
    limit = settings.IMPORT_MAX_ROWS
    for i, row in enumerate(rows):
        if i > limit:
            raise _too_many_rows()
        yield row


def _csv_dataset(text: str) -> tablib.Dataset:
    """tablib's CSV reading (short rows padded, empty ones skipped), row by row under the cap."""
    dataset = tablib.Dataset()
    for i, row in enumerate(_capped(csv.reader(io.StringIO(text)))):
        if i == 0:
            dataset.headers = row
        elif row:
            dataset.append(row + [""] * (dataset.width - len(row)))
    return dataset


def _xlsx_dataset(content: bytes) -> tablib.Dataset:
    """import-export's XLSX reading (the active sheet, values not formulas, blank rows
    skipped), streamed: openpyxl's read-only mode parses the sheet as it is iterated, so a
    sheet of a million rows stops at the cap instead of being loaded."""
    # An XLSX is a zip: what its parts unpack to is declared in the directory, and zipfile
    # never unpacks more than that, so a bomb is refused before anything is unpacked.
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > settings.IMPORT_MAX_UNPACKED_BYTES:
        raise ImportFileError(
            _("The workbook unpacks to %(size)s; the limit is %(limit)s.")
            % {"size": filesizeformat(unpacked), "limit": filesizeformat(settings.IMPORT_MAX_UNPACKED_BYTES)}
        )
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        dataset = tablib.Dataset()
        for i, row in enumerate(_capped(book.active.iter_rows(values_only=True))):
            if i == 0:
                dataset.headers = list(row)
            elif any(value is not None for value in row):
                dataset.append(list(row))
        return dataset
    finally:
        book.close()


def read_dataset(content: bytes, fmt: str):
    """The upload as a tablib Dataset with normalised headers, or ImportFileError. Refused
    above IMPORT_MAX_BYTES before it is parsed, and past IMPORT_MAX_ROWS while it is read."""
    if fmt not in FORMATS:
        raise ImportFileError(_("Unsupported format '%(fmt)s': use .xlsx or .csv.") % {"fmt": fmt})
    if sentence := too_big(len(content), settings.IMPORT_MAX_BYTES):
        raise ImportFileError(sentence)
    if fmt == "csv":
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportFileError(_("This CSV file is not UTF-8 text."))
        if not text.strip():
            raise ImportFileError(_("The file is empty."))
        try:
            dataset = _csv_dataset(text)
        except ImportFileError:
            raise
        except Exception:
            raise ImportFileError(_("This file can't be read as CSV."))
    else:
        try:
            dataset = _xlsx_dataset(content)
        except ImportFileError:
            raise
        except Exception:
            # openpyxl raises zipfile, KeyError or XML errors for a file that merely ends in .xlsx
            raise ImportFileError(_("This file is not a valid .xlsx workbook."))
    headers = [str(h or "").strip().lower() for h in (dataset.headers or [])]
    missing = [c for c in COLUMNS if c not in headers]
    unknown = [h for h in headers if h and h not in COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(_("missing columns: %(columns)s") % {"columns": ", ".join(missing)})
        if unknown:
            parts.append(_("unknown columns: %(columns)s") % {"columns": ", ".join(unknown)})
        raise ImportFileError(
            _("Wrong columns (%(problems)s). Expected: %(expected)s.")
            % {"problems": "; ".join(parts), "expected": ", ".join(COLUMNS)}
        )
    if len(headers) != len(set(headers)):
        raise ImportFileError(_("A column appears twice."))
    dataset.headers = headers
    if not len(dataset):
        raise ImportFileError(_("The file has no rows."))
    return dataset


# --- cell parsing ------------------------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number typed into a spreadsheet cell: 1001.0 → "1001"
    return str(value).strip()


def _money(value) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(_text(value).replace(",", ""))
    except InvalidOperation:
        raise ValueError(_("'%(value)s' is not an amount") % {"value": _text(value)})
    if not amount.is_finite() or amount < 0:
        raise ValueError(_("'%(value)s' is not an amount") % {"value": _text(value)})
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(_("'%(value)s' has more than 2 decimal places") % {"value": _text(value)})
    return amount.quantize(Decimal("0.01"))


def _quantity(value) -> int:
    text = _text(value)
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(_("'%(value)s' is not a whole number above 0") % {"value": text})
    if int(text) > MAX_QUANTITY:
        raise ValueError(_("'%(value)s' is more than %(max)s") % {"value": text, "max": f"{MAX_QUANTITY:,}"})
    return int(text)


def _when(value) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time.min)
    else:
        text = _text(value)
        parsed = parse_datetime(text)
        if parsed is None and parse_date(text):
            parsed = datetime.combine(parse_date(text), time.min)
        if parsed is None:
            raise ValueError(_("'%(value)s' is not a date and time (YYYY-MM-DD HH:MM)") % {"value": text})
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def channel_names(channels=None, limit: int = 30) -> str:
    """The active channels' names, as a file may spell them (a long list is cut short)."""
    names = sorted(channels or Channel.objects.filter(is_active=True).values_list("name", flat=True))
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "") if names else "—"


@dataclass
class _Row:
    line: ImportLine | None = None
    values: dict = field(default_factory=dict)


class OrderLineImportResource(resources.Resource):
    """One spreadsheet row → one order line; the service creates the orders after the last row."""

    order_number = fields.Field(column_name="order_number")
    channel = fields.Field(column_name="channel")
    customer_external_id = fields.Field(column_name="customer_external_id")
    customer_name = fields.Field(column_name="customer_name")
    customer_phone = fields.Field(column_name="customer_phone")
    placed_at = fields.Field(column_name="placed_at")
    currency = fields.Field(column_name="currency")
    sku = fields.Field(column_name="sku")
    name = fields.Field(column_name="name")
    quantity = fields.Field(column_name="quantity")
    unit_price = fields.Field(column_name="unit_price")
    shipping_fee = fields.Field(column_name="shipping_fee")
    payment_method = fields.Field(column_name="payment_method")
    payment_reference = fields.Field(column_name="payment_reference")
    payment_amount = fields.Field(column_name="payment_amount")

    class Meta:
        skip_diff = True
        use_transactions = True
        # Rows never load an existing object: get_or_init_instance below always starts afresh.
        instance_loader_class = BaseInstanceLoader

    def __init__(self, *, actor: Actor):
        super().__init__()
        self.actor = actor
        self.lines: list[ImportLine] = []
        self.orders_created = 0
        self._channels = {c.name: c for c in Channel.objects.filter(is_active=True)}

    def get_or_init_instance(self, instance_loader, row):
        return _Row(), True

    def import_instance(self, instance, row, **kwargs):
        errors: dict[str, list[str]] = {}
        parsed = {}
        for column in COLUMNS:
            value = row.get(column)
            if column not in OPTIONAL and _text(value) == "":
                errors[column] = [_("This cell is empty.")]
                continue
            try:
                if column in ("unit_price", "payment_amount"):
                    parsed[column] = _money(value)
                elif column == "shipping_fee":
                    parsed[column] = _money(value) if _text(value) else Decimal("0.00")
                elif column == "quantity":
                    parsed[column] = _quantity(value)
                elif column == "placed_at":
                    parsed[column] = _when(value)
                elif column == "currency":
                    code = _text(value).upper()
                    if len(code) != 3 or not code.isalpha():
                        raise ValueError(_("'%(value)s' is not a currency code") % {"value": _text(value)})
                    parsed[column] = code
                elif column == "channel":
                    name = _text(value)
                    if name not in self._channels:
                        raise ValueError(
                            _("unknown channel '%(name)s'; the channels are: %(channels)s")
                            % {"name": name, "channels": channel_names(self._channels)}
                        )
                    parsed[column] = self._channels[name]
                else:
                    parsed[column] = _text(value)
            except ValueError as exc:
                errors[column] = [str(exc)]
        if errors:
            raise ValidationError(errors)
        instance.line = ImportLine(row=kwargs["row_number"], **parsed)

    def save_instance(self, instance, is_create, row, **kwargs):
        # Nothing is written per row: the service creates whole orders in after_import.
        self.lines.append(instance.line)

    def after_import(self, dataset, result: Result, **kwargs):
        if result.has_errors() or result.has_validation_errors() or not self.lines:
            return
        try:
            self.orders_created = len(order_import_rows(lines=self.lines, actor=self.actor))
        except OrderImportError as exc:
            for number, messages in sorted(exc.row_errors.items()):
                row = OrderedDict(zip(dataset.headers, dataset[number - 1], strict=False))
                result.append_invalid_row(number, row, ValidationError({NON_FIELD_ERRORS: messages}))


@dataclass
class ImportOutcome:
    file_error: str = ""
    result: Result | None = None
    orders: int = 0
    lines: int = 0

    @property
    def ok(self) -> bool:
        return (
            not self.file_error
            and self.result is not None
            and not (self.result.has_errors() or self.result.has_validation_errors())
        )


def import_orders(*, content: bytes, fmt: str, actor: Actor, dry_run: bool) -> ImportOutcome:
    """Read, check and (unless `dry_run`) create the file's orders; nothing is kept on any error."""
    try:
        dataset = read_dataset(content, fmt)
    except ImportFileError as exc:
        return ImportOutcome(file_error=str(exc))
    resource = OrderLineImportResource(actor=actor)
    result = resource.import_data(dataset, dry_run=dry_run, use_transactions=True, rollback_on_validation_errors=True)
    orders = len({(line.channel.pk, line.order_number) for line in resource.lines})
    return ImportOutcome(result=result, orders=orders, lines=len(resource.lines))


# --- the template a person fills in --------------------------------------------------------

# column → (what goes in it, an example)
GUIDE = {
    "order_number": (_lazy("The channel's order number; one order spans as many rows as it has lines."), "10001"),
    "channel": (_lazy("A channel's name exactly as on the Channels page (see below)."), ""),
    "customer_external_id": (_lazy("The channel's id of the customer."), "C-1001"),
    "customer_name": (_lazy("Optional."), "王小明"),
    "customer_phone": (_lazy("Optional; international format."), "+8613800000000"),
    "placed_at": (_lazy("Date and time the order was placed (YYYY-MM-DD HH:MM, desk time zone)."), "2026-11-20 10:00"),
    "currency": (_lazy("Three-letter code."), "CNY"),
    "sku": (_lazy("The line's SKU; once per order."), "SKU-1"),
    "name": (_lazy("Optional: the product's name."), "Mug"),
    "quantity": (_lazy("Whole number above 0."), "2"),
    "unit_price": (_lazy("Amount with at most 2 decimals."), "10.50"),
    "shipping_fee": (_lazy("Optional, per order (repeat it on each of its rows); 0 when empty."), "5.00"),
    "payment_method": (_lazy("How the customer paid."), "alipay"),
    "payment_reference": (_lazy("The payment's reference."), "PAY-10001"),
    "payment_amount": (_lazy("What was paid: the lines plus shipping."), "26.00"),
}


def import_template(fmt: str) -> bytes:
    """An empty import file with the right columns; the XLSX one explains each column and
    lists the channels on a second sheet (the import reads only the first)."""
    if fmt == "csv":
        return ("\ufeff" + ",".join(COLUMNS) + "\r\n").encode("utf-8")
    if fmt != "xlsx":
        raise ImportFileError(_("Unsupported format '%(fmt)s': use .xlsx or .csv.") % {"fmt": fmt})
    wb = Workbook()
    sheet = wb.active
    sheet.title = "orders"
    sheet.append(COLUMNS)
    help_sheet = wb.create_sheet("help")
    help_sheet.append([_("column"), _("required"), _("what goes in it"), _("example")])
    for column in COLUMNS:
        meaning, example = GUIDE[column]
        help_sheet.append([column, _("no") if column in OPTIONAL else _("yes"), str(meaning), example])
    help_sheet.append([])
    help_sheet.append([_("channels"), channel_names(limit=1000)])
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
