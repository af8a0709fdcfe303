"""Finance's exports above EXPORT_INLINE_MAX_ROWS: written by a django-q2 task (run inline
here), listed on *Exports* for the user who asked, downloaded only by that user."""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from refunds import exports
from refunds.exports import export_request, export_write, exports_clean
from refunds.models import Export, Payout, RefundRequest
from refunds.tasks import sweep_exports
from tests.factories import ChannelFactory, OrderFactory, RefundRequestFactory

pytestmark = pytest.mark.django_db

PAYOUTS = reverse("admin:refunds_payout_changelist")
EXPORTS = reverse("admin:refunds_export_changelist")
REQUEST_EXPORT = reverse("admin:refunds_refundrequest_export")


@pytest.fixture(autouse=True)
def _small_limit_and_private_media(settings, tmp_path):
    settings.EXPORT_INLINE_MAX_ROWS = 3
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def fin(client, finance_user):
    client.force_login(finance_user)
    return client


def payouts(amounts, state=Payout.State.PENDING_APPROVAL):
    req = RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT)
    return Payout.objects.bulk_create(
        [Payout(request=req, method="original_payment", amount=Decimal(a), currency="CNY", state=state) for a in amounts]
    )


def download(client, export) -> bytes:
    response = client.get(reverse("admin:refunds_export_download", args=[export.pk]))
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def xlsx_rows(content: bytes) -> list[list]:
    return [list(r) for r in openpyxl.load_workbook(io.BytesIO(content), read_only=True).active.iter_rows(values_only=True)]


def csv_rows(content: bytes) -> list[list]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_a_filter_over_the_limit_is_written_in_the_background_and_listed_for_download(
    fin, finance_user, django_capture_on_commit_callbacks
):
    pending = payouts(["1.10", "2.20", "3.30", "4.40"])
    payouts(["9.99"], state=Payout.State.FAILED)  # not in the default filter

    with django_capture_on_commit_callbacks(execute=True):
        response = fin.get(reverse("admin:refunds_payout_export", args=["xlsx"]))

    assert response.status_code == 302 and response["Location"] == EXPORTS
    export = Export.objects.get()
    assert (export.requested_by, export.what, export.fmt, export.state, export.rows) == (
        finance_user,
        Export.What.PAYOUTS,
        "xlsx",
        Export.State.DONE,
        4,
    )
    page = fin.get(EXPORTS).content.decode()
    assert "being written in the background" in page
    assert reverse("admin:refunds_export_download", args=[export.pk]) in page
    rows = xlsx_rows(download(fin, export))
    assert rows[0][0] == "payout no."
    assert [r[0] for r in rows[1:]] == [str(p) for p in pending]
    assert sum(Decimal(str(r[6])) for r in rows[1:]) == Decimal("11.00")
    # Named for its filter and the day it was asked for, like the file given at once.
    assert export.filename == f"payouts-pending_approval-{timezone.localtime(export.created_at).date()}.xlsx"


def test_at_the_limit_the_file_comes_at_once_and_nothing_is_queued(fin):
    payouts(["1.00", "2.00", "3.00"])

    response = fin.get(reverse("admin:refunds_payout_export", args=["csv"]))

    assert response.status_code == 200 and response.streaming
    assert len(csv_rows(b"".join(response.streaming_content))) == 4
    assert not Export.objects.exists()


def test_select_all_over_the_limit_exports_the_changelist_filter_in_the_background(fin, django_capture_on_commit_callbacks):
    failed = payouts(["5.00", "6.00", "7.00", "8.00"], state=Payout.State.FAILED)
    payouts(["1.00"])  # pending: outside ?state=failed

    with django_capture_on_commit_callbacks(execute=True):
        response = fin.post(
            f"{PAYOUTS}?state=failed",
            {"action": "export_csv", "_selected_action": [failed[0].pk], "index": 0, "select_across": 1},
        )

    assert response.status_code == 302 and response["Location"] == EXPORTS
    export = Export.objects.get()
    assert export.filters == {"state": "failed"} and export.rows == 4
    assert [r[0] for r in csv_rows(download(fin, export))[1:]] == [str(p) for p in failed]


def test_refund_requests_over_the_limit_keep_the_form_filter(fin, django_capture_on_commit_callbacks):
    ready = [RefundRequestFactory(state=RefundRequest.State.READY_FOR_PAYOUT) for _ in range(4)]
    RefundRequestFactory(state=RefundRequest.State.UNDER_REVIEW)

    with django_capture_on_commit_callbacks(execute=True):
        response = fin.get(REQUEST_EXPORT, {"state": "ready_for_payout", "format": "csv"})

    assert response.status_code == 302
    export = Export.objects.get()
    assert export.what == Export.What.REFUND_REQUESTS and export.filters == {"state": "ready_for_payout"}
    assert [r[0] for r in csv_rows(download(fin, export))[1:]] == [r.number for r in ready]


def test_only_the_user_who_asked_sees_and_downloads_an_export(client, finance_user, finance_user2, support_user):
    payouts(["1.00"])
    export = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
    export_write(export_id=export.pk)
    url = reverse("admin:refunds_export_download", args=[export.pk])

    client.force_login(finance_user2)
    assert str(export) not in client.get(EXPORTS).content.decode()
    assert client.get(url).status_code == 404
    client.force_login(support_user)
    assert client.get(EXPORTS).status_code == 403
    assert client.get(url).status_code == 404
    client.force_login(finance_user)
    assert client.get(url).status_code == 200


def test_a_user_who_lost_the_permission_gets_a_failed_export_and_no_file(finance_user):
    payouts(["1.00"])
    export = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="xlsx", filters={})
    finance_user.groups.set([Group.objects.get(name="support")])

    assert export_write(export_id=export.pk) == Export.State.FAILED

    export.refresh_from_db()
    assert export.state == Export.State.FAILED and "may not export" in export.error
    assert not export.file


def test_a_redelivered_task_writes_nothing_again(finance_user):
    payouts(["1.00"])
    export = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
    assert export_write(export_id=export.pk) == Export.State.DONE
    export.refresh_from_db()
    name, finished = export.file.name, export.finished_at

    assert export_write(export_id=export.pk) == "not queued"

    export.refresh_from_db()
    assert (export.file.name, export.finished_at, export.state) == (name, finished, Export.State.DONE)


def test_the_sweeper_queues_again_only_exports_left_queued_past_two_minutes(finance_user, django_capture_on_commit_callbacks):
    """A lost task (the broker refused it) leaves the export `queued`; fresh ones may still
    have their task coming, and one being written or done is not queued again."""
    payouts(["1.00"])

    def asked(minutes_ago, state=Export.State.QUEUED):
        export = Export.objects.create(requested_by=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
        Export.objects.filter(pk=export.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago), state=state)
        return export

    lost, fresh, running, done = asked(3), asked(1), asked(3, Export.State.RUNNING), asked(3, Export.State.DONE)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        assert sweep_exports() == 1

    assert len(queued) == 1
    states = dict(Export.objects.values_list("pk", "state"))
    assert states == {lost.pk: "done", fresh.pk: "queued", running.pk: "running", done.pk: "done"}


def test_the_export_sweeper_runs_every_minute():
    schedule = Schedule.objects.get(func="refunds.tasks.sweep_exports")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)


def test_old_exports_and_their_files_are_deleted_and_dead_runs_fail(finance_user, settings, django_capture_on_commit_callbacks):
    payouts(["1.00"])
    old = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
    export_write(export_id=old.pk)
    old.refresh_from_db()
    path = old.file.path
    fresh = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
    now = timezone.now()
    Export.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=settings.EXPORT_KEEP_DAYS, seconds=1))
    Export.objects.filter(pk=fresh.pk).update(
        state=Export.State.RUNNING, started_at=now - timedelta(seconds=settings.EXPORT_TIMEOUT + 61)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert exports_clean(now=now) == 1

    assert not Export.objects.filter(pk=old.pk).exists()
    assert not Path(path).exists()
    fresh.refresh_from_db()
    assert fresh.state == Export.State.FAILED and "ran longer than" in fresh.error


def test_a_filter_the_list_does_not_know_is_a_message_not_an_error_page(fin):
    response = fin.get(reverse("admin:refunds_payout_export", args=["csv"]) + "?no_such_field=1")

    assert response.status_code == 302 and response["Location"] == PAYOUTS
    assert "The filter is not valid" in fin.get(PAYOUTS).content.decode()
    assert not Export.objects.exists()


def test_exports_list_takes_the_same_queries_for_few_and_many(fin, finance_user):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert fin.get(EXPORTS).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(2):
        export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
    few = count()
    for _ in range(8):
        export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
    assert count() == few


def test_the_list_reloads_itself_only_while_a_file_is_being_written(fin, finance_user):
    payouts(["1.00"])
    export = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
    page = fin.get(EXPORTS).content.decode()
    assert 'id="refresh-while-writing"' in page and "Your exports" in page

    export_write(export_id=export.pk)

    assert 'id="refresh-while-writing"' not in fin.get(EXPORTS).content.decode()


def test_deleting_a_user_deletes_their_export_files(finance_user, django_capture_on_commit_callbacks):
    payouts(["1.00"])
    export = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})
    export_write(export_id=export.pk)
    export.refresh_from_db()
    path = Path(export.file.path)
    assert path.exists()

    with django_capture_on_commit_callbacks(execute=True):
        finance_user.delete()

    assert not Export.objects.filter(pk=export.pk).exists()
    assert not path.exists()


def test_an_xlsx_bigger_than_a_sheet_fails_with_a_sentence_and_csv_is_written(finance_user, monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 2)
    payouts(["1.00", "2.00", "3.00"])
    xlsx = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="xlsx", filters={})
    csv_export = export_request(user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={})

    assert export_write(export_id=xlsx.pk) == Export.State.FAILED
    assert export_write(export_id=csv_export.pk) == Export.State.DONE

    xlsx.refresh_from_db()
    assert "more than a spreadsheet holds. Export CSV" in xlsx.error and not xlsx.file


# --- the rows come from selectors, for the screen and the task alike ------------------------


def test_the_task_reads_the_stored_filter_through_the_selector_never_the_admin(
    fin, finance_user, monkeypatch, django_capture_on_commit_callbacks
):
    """The screen stores the parsed filter; the task needs no request and no changelist."""
    (coupon,) = payouts(["7.00"], state=Payout.State.FAILED)
    Payout.objects.filter(pk=coupon.pk).update(method="coupon")
    payouts(["1.00", "2.00", "3.00"], state=Payout.State.FAILED)  # original_payment
    payouts(["9.00"])  # pending

    def no_admin(*args, **kwargs):
        raise AssertionError("the export ran an admin changelist")

    monkeypatch.setattr("django.contrib.admin.ModelAdmin.get_changelist_instance", no_admin)
    export = export_request(
        user=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={"state": "failed", "method": "coupon"}
    )
    assert export_write(export_id=export.pk) == Export.State.DONE

    assert [r[0] for r in csv_rows(download(fin, export))[1:]] == [str(coupon)]


def test_select_all_stores_the_list_filter_parsed_with_its_default_written_out(fin, django_capture_on_commit_callbacks):
    pending = payouts(["1.00", "2.00", "3.00", "4.00"])

    with django_capture_on_commit_callbacks(execute=True):
        fin.post(PAYOUTS + "?o=1", {"action": "export_csv", "_selected_action": [pending[0].pk], "index": 0, "select_across": 1})

    assert Export.objects.get().filters == {"state": "pending_approval"}


@pytest.mark.parametrize(
    "query",
    ["", "?state=failed", "?state=all", "?state=failed&method=coupon", "?state=all&q=RF-{rf}", "?method=store_credit"],
)
def test_the_export_holds_exactly_the_rows_the_list_shows(fin, query, settings):
    """One selector behind the list's filters and the export: the same rows for each filter."""
    settings.EXPORT_INLINE_MAX_ROWS = 100
    failed = payouts(["5.00", "6.00"], state=Payout.State.FAILED)
    Payout.objects.filter(pk=failed[0].pk).update(method="coupon")
    payouts(["1.00", "2.00"])
    other = payouts(["8.00"], state=Payout.State.SUCCEEDED)
    Payout.objects.filter(pk=other[0].pk).update(method="store_credit")
    query = query.format(rf=failed[0].request_id)

    listed = fin.get(PAYOUTS + query).context["cl"].result_list
    exported = csv_rows(b"".join(fin.get(reverse("admin:refunds_payout_export", args=["csv"]) + query).streaming_content))

    assert [r[0] for r in exported[1:]] == [str(p) for p in sorted(listed, key=lambda p: p.pk)]
    assert len(exported) > 1 or query == "?method=store_credit"


def test_a_stored_filter_the_selector_does_not_know_fails_with_a_sentence_and_no_file(finance_user):
    payouts(["1.00"])
    old = Export.objects.create(requested_by=finance_user, what=Export.What.PAYOUTS, fmt="csv", filters={"query": "state=all"})

    assert export_write(export_id=old.pk) == Export.State.FAILED

    old.refresh_from_db()
    assert "no such filter" in old.error and not old.file


# --- the refund-request export: on the requests list, channels picked from a list ------------


def test_the_request_export_picks_channels_from_the_ones_that_exist(fin):
    shop, market = ChannelFactory(name="web store"), ChannelFactory(name="marketplace")
    ours = RefundRequestFactory(order=OrderFactory(channel=shop))
    RefundRequestFactory(order=OrderFactory(channel=market))

    page = fin.get(REQUEST_EXPORT).content.decode()
    assert f'value="{shop.pk}"' in page and f'value="{market.pk}"' in page and "web store" in page

    response = fin.get(REQUEST_EXPORT, {"channels": [shop.pk], "format": "csv"})
    rows = csv_rows(b"".join(response.streaming_content))
    assert [(r[0], r[2]) for r in rows[1:]] == [(ours.number, "web store")]


def test_a_channel_typed_as_text_is_refused_with_the_field_error_and_nothing_is_written(fin):
    ChannelFactory(name="web store")
    RefundRequestFactory.create_batch(4)

    response = fin.get(REQUEST_EXPORT, {"channels": "web store", "format": "xlsx"})

    assert response.status_code == 400
    assert "“web store” is not a valid value" in response.content.decode()
    assert not Export.objects.exists()


def test_the_request_export_in_the_background_keeps_the_parsed_filter(fin, django_capture_on_commit_callbacks):
    shop = ChannelFactory(name="shop")
    mine = [RefundRequestFactory(order=OrderFactory(channel=shop)) for _ in range(4)]
    RefundRequestFactory()  # another channel
    today = timezone.localdate().isoformat()

    with django_capture_on_commit_callbacks(execute=True):
        response = fin.get(REQUEST_EXPORT, {"channels": [shop.pk], "created_from": today, "created_to": today, "format": "csv"})

    assert response.status_code == 302 and response["Location"] == EXPORTS
    export = Export.objects.get()
    assert export.filters == {"channels": [shop.pk], "created_from": today, "created_to": today}
    assert [r[0] for r in csv_rows(download(fin, export))[1:]] == [r.number for r in mine]


def test_the_requests_list_offers_the_export_with_its_own_filter_to_finance_only(client, fin, support_user):
    shop = ChannelFactory(name="shop")
    changelist = reverse("admin:refunds_refundrequest_changelist")

    page = fin.get(changelist, {"queue": "refunded", "channel__id__exact": shop.pk}).content.decode()
    assert f"{REQUEST_EXPORT}?state=refunded&amp;channels={shop.pk}" in page
    form = fin.get(REQUEST_EXPORT, {"state": "refunded", "channels": shop.pk}).context["form"]
    assert form.initial == {"state": "refunded", "channels": [str(shop.pk)]}

    client.force_login(support_user)
    assert REQUEST_EXPORT not in client.get(changelist).content.decode()
    assert client.get(REQUEST_EXPORT, {"format": "csv"}).status_code == 403
    assert not Export.objects.exists()
