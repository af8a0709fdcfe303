"""Spreadsheet exports finance reconciles on, built on django-import-export resources.

The resources say which columns there are and how a row is read; the writers below stream
them. import-export's own `Resource.export()` builds a whole `tablib.Dataset` in memory and
its admin action posts every selected pk, which breaks past 1,000 rows
(`DATA_UPLOAD_MAX_NUMBER_FIELDS`). Here the queryset is read with `.iterator()`, CSV is a
`StreamingHttpResponse`, and XLSX is written row by row by openpyxl's write-only mode into a
temporary file, so memory stays flat whatever the number of rows.
"""

import csv
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from import_export import fields, resources
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from refunds.models import Payout, RefundRequest

CHUNK_SIZE = 2000
# Cells a spreadsheet would run as a formula (CSV injection); see OWASP "CSV Injection".
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _user(user) -> str:
    return user.get_username() if user is not None else ""


class PayoutResource(resources.Resource):
    payout_no = fields.Field(column_name="payout no.")
    request_no = fields.Field(column_name="request no.")
    order_no = fields.Field(column_name="order no.")
    channel = fields.Field(column_name="channel")
    customer = fields.Field(column_name="customer")
    method = fields.Field(column_name="method")
    amount = fields.Field(column_name="amount")
    currency = fields.Field(column_name="currency")
    state = fields.Field(column_name="state")
    approved_by = fields.Field(column_name="approved by")
    approved_at = fields.Field(column_name="approved at")
    succeeded_at = fields.Field(column_name="succeeded at")
    gateway_reference = fields.Field(column_name="gateway reference")
    # The codes for machines (a script, a pivot table), beside the labels people read.
    method_code = fields.Field(column_name="method code")
    state_code = fields.Field(column_name="state code")

    class Meta:
        model = Payout

    def dehydrate_payout_no(self, p):
        return str(p)

    def dehydrate_request_no(self, p):
        return p.request.number

    def dehydrate_order_no(self, p):
        return p.request.order.number

    def dehydrate_channel(self, p):
        return p.request.channel.name

    def dehydrate_customer(self, p):
        return p.request.customer.name

    def dehydrate_method(self, p):
        return p.get_method_display()

    def dehydrate_method_code(self, p):
        return p.method

    def dehydrate_amount(self, p):
        return p.amount

    def dehydrate_currency(self, p):
        return p.currency

    def dehydrate_state(self, p):
        return p.get_state_display()

    def dehydrate_state_code(self, p):
        return p.state

    def dehydrate_approved_by(self, p):
        return _user(p.approved_by)

    def dehydrate_approved_at(self, p):
        return p.approved_at

    def dehydrate_succeeded_at(self, p):
        return p.succeeded_at

    def dehydrate_gateway_reference(self, p):
        return p.gateway_reference


class RefundRequestResource(resources.Resource):
    request_no = fields.Field(column_name="request no.")
    order_no = fields.Field(column_name="order no.")
    channel = fields.Field(column_name="channel")
    customer = fields.Field(column_name="customer")
    reason = fields.Field(column_name="reason")
    kind = fields.Field(column_name="kind")
    method = fields.Field(column_name="method")
    amount_requested = fields.Field(column_name="amount requested")
    amount_approved = fields.Field(column_name="amount approved")
    amount_paid = fields.Field(column_name="amount paid")
    currency = fields.Field(column_name="currency")
    state = fields.Field(column_name="state")
    approved_by = fields.Field(column_name="approved by")
    approved_at = fields.Field(column_name="approved at")
    refunded_at = fields.Field(column_name="refunded at")
    created_at = fields.Field(column_name="created at")
    reason_code = fields.Field(column_name="reason code")
    kind_code = fields.Field(column_name="kind code")
    method_code = fields.Field(column_name="method code")
    state_code = fields.Field(column_name="state code")

    class Meta:
        model = RefundRequest

    def dehydrate_request_no(self, r):
        return r.number

    def dehydrate_order_no(self, r):
        return r.order.number

    def dehydrate_channel(self, r):
        return r.channel.name

    def dehydrate_customer(self, r):
        return r.customer.name

    def dehydrate_reason(self, r):
        return r.get_reason_display()

    def dehydrate_reason_code(self, r):
        return r.reason

    def dehydrate_kind(self, r):
        return r.get_kind_display()

    def dehydrate_kind_code(self, r):
        return r.kind

    def dehydrate_method(self, r):
        return r.get_refund_method_display() if r.refund_method else ""

    def dehydrate_method_code(self, r):
        return r.refund_method

    def dehydrate_amount_requested(self, r):
        return r.amount_requested

    def dehydrate_amount_approved(self, r):
        return r.amount_approved

    def dehydrate_amount_paid(self, r):
        return r.amount_paid

    def dehydrate_currency(self, r):
        return r.currency

    def dehydrate_state(self, r):
        return r.get_state_display()

    def dehydrate_state_code(self, r):
        return r.state

    def dehydrate_approved_by(self, r):
        return _user(r.approved_by)

    def dehydrate_approved_at(self, r):
        return r.approved_at

    def dehydrate_refunded_at(self, r):
        return r.refunded_at

    def dehydrate_created_at(self, r):
        return r.created_at


# --- writers -----------------------------------------------------------------------------


def _cell(value):
    """A value as a spreadsheet cell: local naive datetimes (Excel has no zones), safe text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None, microsecond=0)
    if isinstance(value, (Decimal, int)):
        return value
    text = str(value)
    if getattr(settings, "IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT", False) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def iter_rows(resource: resources.Resource, queryset) -> Iterator[list]:
    """Header row, then one row per object, reading the queryset in chunks."""
    # Resolved once: import-export's export_resource() looks the fields up again per row.
    export_fields = resource.get_export_fields()
    yield resource.get_export_headers()
    for obj in queryset.iterator(chunk_size=CHUNK_SIZE):
        yield [_cell(resource.export_field(f, obj)) for f in export_fields]


class _Echo:
    def write(self, value):
        return value


def _csv_lines(rows: Iterable[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"  # so Excel opens UTF-8 (customer names in Chinese) correctly
    for row in rows:
        yield writer.writerow([v.isoformat(sep=" ") if isinstance(v, datetime) else v for v in row])


def csv_response(resource: resources.Resource, queryset, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_csv_lines(iter_rows(resource, queryset)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


# Money in a spreadsheet: a number (sums and pivots work) shown with its two decimals.
MONEY_FORMAT = "0.00"


def xlsx_cells(ws, row: list) -> list:
    """A row for a write-only sheet: each Decimal (money, never a float on the way) a numeric
    cell with the `0.00` number format; other values as they are."""
    out = []
    for value in row:
        if isinstance(value, Decimal):
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = MONEY_FORMAT
            out.append(cell)
        else:
            out.append(value)
    return out


def write_xlsx(resource: resources.Resource, queryset, fileobj) -> int:
    """Write the rows into `fileobj` with openpyxl's write-only mode; return the data row count."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=str(resource.Meta.model._meta.verbose_name_plural)[:31])
    n = -1
    for n, row in enumerate(iter_rows(resource, queryset)):  # noqa: B007
        ws.append(xlsx_cells(ws, row))
    wb.save(fileobj)
    return max(n, 0)


def write_csv(resource: resources.Resource, queryset, fileobj) -> int:
    """Write the rows as UTF-8 CSV (with the BOM Excel needs) into binary `fileobj`; return
    the data row count."""
    lines = 0
    for line in _csv_lines(iter_rows(resource, queryset)):
        fileobj.write(line.encode("utf-8"))
        lines += 1
    return max(lines - 2, 0)  # the BOM and the header are not rows


def xlsx_response(resource: resources.Resource, queryset, filename: str) -> FileResponse:
    # The workbook goes to a temp file, not memory; the open handle outlives the unlinked name.
    tmp = tempfile.TemporaryFile(suffix=".xlsx")
    write_xlsx(resource, queryset, tmp)
    tmp.seek(0)
    return FileResponse(
        tmp,
        as_attachment=True,
        filename=f"{filename}.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


EXPORTERS = {"csv": csv_response, "xlsx": xlsx_response}
# The same files, written into a file object (a background export).
WRITERS = {"csv": write_csv, "xlsx": write_xlsx}
