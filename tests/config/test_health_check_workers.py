import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from config.health.selectors import worker_liveness
from config.health.services import worker_stall_sync
from config.models import WorkerStall
from notifications.models import Notification
from notifications.selectors import staff_inbox_for
from tests.factories import UserFactory


def test_moving_work_exits_0_with_a_line(queue, capsys):
    queue.queued(seconds=3)
    queue.finished(seconds=1)
    call_command("check_workers")
    out = capsys.readouterr().out
    assert out.startswith(
        f"Workers OK on queue '{queue.name}': 1 task(s) waiting, the oldest for 3 s; last task finished 1 s ago."
    )


def test_a_stall_exits_non_zero_with_one_sentence(queue):
    queue.queued(seconds=300)
    queue.finished(seconds=200)
    with pytest.raises(CommandError) as exc:
        call_command("check_workers")
    assert str(exc.value) == (
        f"Background work on queue '{queue.name}' is stalled: 1 task(s) waiting, the oldest for 300 s, and no task "
        "finished for 200 s (limit 60 s). Check the qcluster service."
    )


def test_the_administrators_are_alerted_once_per_stall_and_told_when_it_clears(queue):
    admin = UserFactory(username="root", is_superuser=True)
    support = UserFactory(username="agent", role="support")
    stuck = queue.queued(seconds=300)
    queue.finished(seconds=200)
    for _ in range(3):  # a supervisor probing every minute
        with pytest.raises(CommandError):
            call_command("check_workers")
    alert = Notification.objects.get(event="workers_stalled")
    assert alert.recipient == "admin" and alert.channel == "staff"
    assert alert.subject == "Background work has stopped"
    assert f"on queue {queue.name} has stopped: 1 task(s) waiting, the oldest for 5 min" in alert.body
    assert list(staff_inbox_for(admin)) == [alert] and not staff_inbox_for(support).exists()
    stall = WorkerStall.objects.get()
    assert stall.resolved_at is None and stall.queued == 1

    stuck.delete()  # the cluster came back and took it
    queue.finished(seconds=0)
    call_command("check_workers")
    call_command("check_workers")
    stall.refresh_from_db()
    assert stall.resolved_at is not None
    recovered = Notification.objects.get(event="workers_recovered")
    assert recovered.body.startswith(f"Background work on queue {queue.name} is moving again")
    assert Notification.objects.count() == 2


def test_a_new_stall_after_a_recovery_alerts_again(queue):
    stuck = queue.queued(seconds=300)
    worker_stall_sync(liveness=worker_liveness())
    stuck.delete()
    worker_stall_sync(liveness=worker_liveness())
    queue.queued(seconds=300)
    assert worker_stall_sync(liveness=worker_liveness()) == "opened"
    assert Notification.objects.filter(event="workers_stalled").count() == 2
    assert WorkerStall.objects.filter(resolved_at__isnull=True).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_checks_racing_each_other_alert_once(queue):
    """Every web worker's /health/ and the supervisor's probe may see the stall at once."""
    queue.queued(seconds=300)
    liveness = worker_liveness()
    barrier = threading.Barrier(8)
    results = []

    def check():
        try:
            barrier.wait()
            results.append(worker_stall_sync(liveness=liveness))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [""] * 7 + ["opened"]
    assert Notification.objects.filter(event="workers_stalled").count() == 1
