import pytest
from django.db import connection
from django.urls import reverse

from config.models import WorkerStall
from notifications.models import Notification


def test_healthy_answers_200_with_the_queue_figures(client, queue, django_assert_max_num_queries):
    queue.queued(seconds=5)
    queue.finished(seconds=2)
    with django_assert_max_num_queries(5):  # polled: SELECT 1, three reads, the open-stall check
        response = client.get(reverse("health"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["workers"]["queued"] == 1 and body["workers"]["stalled"] is False
    assert "no-cache" in response["Cache-Control"]
    assert not WorkerStall.objects.exists() and not Notification.objects.exists()


def test_stalled_answers_503_with_the_sentence_and_alerts_once(client, queue):
    queue.queued(seconds=120)
    queue.finished(seconds=100)
    first, second = client.get(reverse("health")), client.get(reverse("health"))
    assert first.status_code == second.status_code == 503
    assert first.json()["status"] == "stalled"
    assert first.json()["problem"].startswith(f"Background work on queue '{queue.name}' is stalled")
    assert Notification.objects.filter(event="workers_stalled").count() == 1


def test_it_needs_no_login_and_refuses_writes(client, queue):
    assert client.get(reverse("health")).status_code == 200
    assert client.post(reverse("health")).status_code == 405


@pytest.mark.postgres  # SQLite's in-memory test database can not be closed, so not lost either
@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_answers_503_not_a_500(client, queue):
    connection.close()
    saved = dict(connection.settings_dict)
    connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        response = client.get(reverse("health"))
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable", "workers": None}
