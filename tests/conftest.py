import pytest
from django.db import connection

from orders.actors import Actor
from tests.factories import UserFactory


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need real row locks; on SQLite they are skipped, with the reason."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...); SQLite has no row locks")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _sync_q2(settings, monkeypatch):
    """Run django-q2 tasks inline in unit tests; end-to-end tests start a real cluster instead."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


def _role_user(role):
    user = UserFactory(username=f"{role}-user", role=role)
    return user


@pytest.fixture
def support_user(db):
    return _role_user("support")


@pytest.fixture
def support_user2(db):
    return UserFactory(username="support-user-2", role="support")


@pytest.fixture
def warehouse_user(db):
    return _role_user("warehouse")


@pytest.fixture
def finance_user(db):
    return _role_user("finance")


@pytest.fixture
def finance_user2(db):
    return UserFactory(username="finance-user-2", role="finance")


@pytest.fixture
def risk_user(db):
    return _role_user("risk")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_superuser=True)


@pytest.fixture
def support(support_user):
    return Actor.for_user(support_user)


@pytest.fixture
def warehouse(warehouse_user):
    return Actor.for_user(warehouse_user)


@pytest.fixture
def finance(finance_user):
    return Actor.for_user(finance_user)
