"""`seed_demo`: believable, consistent with the money invariants and with the merchant's policy,
complete, repeatable only when asked, and never on a production install."""

import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import OuterRef
from django.test import Client, RequestFactory
from django.utils import timezone

from orders.models import Carrier, Channel, CustomerMessage, Order, OrderEvent, OrderLine, Shipment, TrackingEvent
from refunds import rules
from refunds.assessment import risk_assessor
from refunds.gateways.simulated.models import GatewayLedgerEntry
from refunds.management.commands.seed_demo import STAFF
from refunds.models import Payout, RefundEvent, RefundPolicy, RefundRequest

pytestmark = pytest.mark.django_db
D = Decimal
BASE_DIR = Path(__file__).resolve().parent.parent.parent
OPEN = {"submitted", "under_review", "awaiting_customer", "awaiting_return", "return_in_transit", "received", "ready_for_payout"}
LOGIN = re.compile(r"^  (\S+)\s+(\w{4}-\w{4}-\w{4}-\w{4})\s+(\S+)$", re.M)
KEY = re.compile(r"^  channel API key for (.+): (\S+)$", re.M)
CARRIER_SECRET = re.compile(r"^  carrier webhook secret for (\S+): (\S+)$", re.M)


@pytest.fixture(autouse=True)
def demo_install(settings):
    settings.DEBUG = True  # seed_demo refuses to run otherwise (see the last tests)


def password_works(username: str, password: str) -> bool:
    """The admin's sign-in check (django-axes wants the request it guards)."""
    return authenticate(RequestFactory().post("/admin/login/"), username=username, password=password) is not None


def seed(**kwargs) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, stderr=StringIO(), verbosity=0, **kwargs)
    return out.getvalue()


def printed(out: str) -> dict:
    return {
        "logins": {u: p for u, p, _role in LOGIN.findall(out)},
        "keys": dict(KEY.findall(out)),
        "carriers": dict(CARRIER_SECRET.findall(out)),
    }


def test_seed_demo_loads_a_consistent_merchant_with_every_state_and_the_logins():
    out = seed(orders=300, seed=5)

    # Every resting state of a request and every payout state is there to look at.
    assert set(RefundRequest.objects.values_list("state", flat=True)) == set(RefundRequest.State.values) - {"approved"}
    assert set(Payout.objects.values_list("state", flat=True)) == set(Payout.State.values)
    assert set(Channel.objects.values_list("kind", flat=True)) == set(Channel.Kind.values)
    assert Shipment.objects.exists() and TrackingEvent.objects.exists() and CustomerMessage.objects.exists()
    # ... some of them driven through the real services, with real evidence reports.
    assert RefundRequest.objects.filter(idempotency_key__startswith="live-").count() >= 30
    assert RefundRequest.objects.filter(evidence__shipments__0__events__0__status="picked_up").exists()

    # Money: what the orders say is what the lines, the open requests and the payouts say.
    held_lines, refunded_lines = defaultdict(lambda: D("0")), defaultdict(lambda: D("0"))
    for order_id, held, refunded in OrderLine.objects.values_list("order_id", "held_amount", "refunded_amount"):
        held_lines[order_id] += held
        refunded_lines[order_id] += refunded
    held_requests, paid = defaultdict(lambda: D("0")), defaultdict(lambda: D("0"))
    for order_id, state, amount in RefundRequest.objects.values_list("order_id", "state", "amount_requested"):
        if state in OPEN:
            held_requests[order_id] += amount
    for order_id, amount in Payout.objects.filter(state="succeeded").values_list("request__order_id", "amount"):
        paid[order_id] += amount
    for o in Order.objects.all():
        assert o.held_total == held_lines[o.pk] == held_requests[o.pk], o.number
        assert o.refunded_total == refunded_lines[o.pk] == paid[o.pk], o.number
        assert o.refunded_total + o.held_total <= o.paid_total
    assert GatewayLedgerEntry.objects.count() == Payout.objects.filter(state="succeeded", method="original_payment").count()

    # Every request's event log is one unbroken chain ending in its state, none of it in the future.
    assert not RefundEvent.objects.filter(at__gt=timezone.now()).exists()
    assert not OrderEvent.objects.filter(at__gt=timezone.now()).exists()
    chains = defaultdict(list)
    for rid, frm, to in (
        RefundEvent.objects.filter(payout__isnull=True).order_by("at", "pk").values_list("request_id", "from_state", "to_state")
    ):
        if frm != to:  # a first approval records an event without a state change
            chains[rid].append((frm, to))
    for rid, state in RefundRequest.objects.values_list("pk", "state"):
        chain = chains[rid]
        assert chain[0][0] == "" and chain[-1][1] == state, (rid, chain)
        assert all(a[1] == b[0] for a, b in zip(chain, chain[1:], strict=False)), (rid, chain)

    # One login per role, printed with the password that logs in to the admin.
    logins = printed(out)["logins"]
    assert set(logins) == set(STAFF)
    User = get_user_model()
    for username, role in STAFF.items():
        user = User.objects.get(username=username)
        assert user.is_superuser if role is None else list(user.groups.values_list("name", flat=True)) == [role]
        assert password_works(username, logins[username])
    assert not password_works("support", logins["support2"])  # and each role its own


# What a customer asking for a refund for each reason would write about. Only the two
# delivery reasons are about the parcel.
FITS = {
    "size_fit": r"size|small|big|tight|fit",
    "changed_mind": r"changed my mind|mistake|no longer|don't need",
    "damaged": r"damage|crack|broken|crushed",
    "wrong_item": r"wrong|not the model",
    "not_received": r"never arrived|not received",
    "shipping_delay": r"late|taking|delay",
    "not_as_described": r"photos|listing|described",
    "used_goods": r"used|opened",
    "quality_issue": r"came apart|stopped working|broke",
    "other": r"call me|talk to someone",
}
ABOUT_THE_PARCEL = re.compile(r"parcel|deliver|tracking|arriv", re.I)


def _fits(reason: str, text: str) -> bool:
    if reason not in ("not_received", "shipping_delay") and ABOUT_THE_PARCEL.search(text):
        return False
    return bool(re.search(FITS[reason], text, re.I))


def test_what_the_customer_writes_fits_the_reason_of_the_request():
    seed(orders=300, seed=5)

    notes = list(RefundRequest.objects.values_list("reason", "customer_note"))
    assert {reason for reason, _ in notes} >= {"size_fit", "not_received", "shipping_delay", "damaged"}
    assert all(_fits(reason, note) for reason, note in notes), [(r, n) for r, n in notes if not _fits(r, n)]
    # The customer's messages on an order with a bulk request talk about that request too.
    reason_of = dict(RefundRequest.objects.filter(idempotency_key__startswith="seed-").values_list("order_id", "reason"))
    said = CustomerMessage.objects.filter(direction="in", order_id__in=reason_of).values_list("order_id", "body")
    assert said
    wrong = [(reason_of[order_id], body) for order_id, body in said if not _fits(reason_of[order_id], body)]
    assert not wrong


OUTCOME_OF = {
    "approve_automatically": rules.PASS,
    "escalate": rules.ESCALATE,
    "reject_automatically": rules.REJECT,
    "offer_alternative": rules.OFFER,
}


def test_every_request_is_decided_as_refunds_rules_decide_it_under_its_channels_policy():
    # The merchant changed the policies before loading: one channel has a stricter one of its
    # own (the seed takes an existing channel as it is), the default a lower risk threshold.
    web_store = Channel.objects.create(name="Web Store", kind=Channel.Kind.WEB_STORE)
    RefundPolicy.objects.create(channel=web_store, name="web", return_window_days=7, auto_approve_limit=D("100.00"))
    RefundPolicy.objects.filter(channel__isnull=True).update(risk_threshold=50)
    seed(orders=400, seed=5)

    listed_then = risk_assessor().listed_at(customer=OuterRef("customer_id"), at=OuterRef("evaluated_at"))
    requests = (
        RefundRequest.objects.select_related("order", "channel")
        .prefetch_related("order__shipments")
        .annotate(listed=listed_then)
        .order_by("pk")
    )
    first_decision = {}
    for rid, action, note in (
        RefundEvent.objects.filter(payout__isnull=True)
        .exclude(action="submit")
        .order_by("-at", "-pk")
        .values_list("request_id", "action", "note")
    ):
        first_decision[rid] = (action, note)
    outcomes = Counter()
    for refund in requests:
        if refund.evaluated_at is None:
            assert refund.state in ("submitted", "withdrawn") and not refund.rule_trace, refund.number
            continue
        facts = rules.gather_facts(refund, risk_score=refund.risk_score or 0, watchlisted=refund.listed, now=refund.evaluated_at)
        facts.refunded_total -= refund.amount_paid  # what the order had refunded before this request was paid
        decision = rules.decide(facts, rules.policy_for(refund.channel))

        assert refund.rule_trace == decision.trace, refund.number
        action, note = first_decision[refund.pk]
        assert OUTCOME_OF[action] == decision.outcome, refund.number
        assert refund.kind == decision.kind, refund.number
        # The decision's event says the rules' own sentences.
        said = "all rules passed" if decision.outcome == rules.PASS else decision.sentences(decision.outcome)
        assert note == said, refund.number
        if decision.outcome == rules.REJECT:
            assert (refund.state, refund.decision_reason) == ("rejected", decision.sentences(rules.REJECT))
        if decision.outcome == rules.OFFER:
            assert refund.alternative["kind"] == decision.alternative["kind"]
        outcomes[decision.outcome, refund.channel.name == "Web Store"] += 1
    # Every outcome of the policy is there, on the default policy and on the channel's own.
    assert {o for o, _web in outcomes} == {rules.PASS, rules.ESCALATE, rules.REJECT, rules.OFFER}
    assert outcomes[rules.PASS, True] and outcomes[rules.ESCALATE, True]
    # The thresholds are the policies': nothing above the web store's limit was approved by the rules.
    web = RefundRequest.objects.filter(channel__name="Web Store", events__action="approve_automatically")
    assert web.exists() and not web.filter(amount_requested__gt=D("100.00")).exists()


class Forget(Exception):
    pass


def seeded_secrets(**kwargs) -> dict:
    """Seed an empty database inside a transaction that is then rolled back, as two separate
    installs would; check that what was printed opens the admin, the API and the webhook."""
    try:
        with transaction.atomic():
            got = printed(seed(orders=10, no_live=True, **kwargs))
            assert set(got["logins"]) == set(STAFF)
            assert set(got["keys"]) == set(Channel.objects.values_list("name", flat=True))
            assert set(got["carriers"]) == set(Carrier.objects.values_list("code", flat=True))
            for username, password in got["logins"].items():
                assert password_works(username, password)
            for key in got["keys"].values():
                assert Client().get("/api/v1/refunds/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
            assert Client().get("/api/v1/refunds/", HTTP_AUTHORIZATION="Bearer rd_not-a-key").status_code == 401
            for code, secret in got["carriers"].items():
                assert Carrier.objects.get(code=code).secret == secret
            raise Forget
    except Forget:
        pass
    assert not Channel.objects.exists()
    return got


def _every_secret(got: dict) -> list[str]:
    return [*got["logins"].values(), *got["keys"].values(), *got["carriers"].values()]


def test_without_a_seed_every_install_gets_its_own_passwords_and_keys():
    first, second = seeded_secrets(), seeded_secrets()

    assert not set(_every_secret(first)) & set(_every_secret(second))
    assert len(set(first["logins"].values())) == len(STAFF)  # no two roles share a password
    assert not any(p.endswith("demo-pass") for p in first["logins"].values())


def test_with_a_seed_the_passwords_and_keys_are_the_same_every_time():
    first, again, other = seeded_secrets(seed=7), seeded_secrets(seed=7), seeded_secrets(seed=8)

    assert first == again
    assert not set(_every_secret(first)) & set(_every_secret(other))


def test_if_empty_leaves_an_existing_database_alone_and_prints_no_password():
    seed(orders=20, seed=1, no_live=True)
    before = (Order.objects.count(), RefundRequest.objects.count(), RefundEvent.objects.count())

    out = seed(orders=20, seed=1, if_empty=True)

    assert "already loaded" in out and not printed(out)["logins"] and not printed(out)["keys"]
    assert (Order.objects.count(), RefundRequest.objects.count(), RefundEvent.objects.count()) == before


def test_seeding_again_creates_no_login_and_leaves_the_passwords_alone():
    first = printed(seed(orders=20, seed=1, no_live=True))
    out = seed(orders=20, seed=2, no_live=True)

    assert not printed(out)["logins"] and "password unchanged" in out
    assert password_works("finance", first["logins"]["finance"])


def test_seed_demo_refuses_to_run_with_debug_off_and_writes_nothing(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="refuses to run with DEBUG off"):
        seed(orders=20)

    assert not get_user_model().objects.exists() and not Channel.objects.exists() and not Order.objects.exists()


def test_seed_demo_exits_non_zero_with_a_sentence_with_debug_off(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}", "DEBUG": "0"}
    run = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--orders", "20"], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )

    assert run.returncode == 1
    assert "seed_demo refuses to run with DEBUG off" in run.stderr and "Set DEBUG=1" in run.stderr


def _story(orders) -> list:
    return [
        (
            o.state,
            o.paid_total,
            o.held_total,
            o.refunded_total,
            tuple(o.lines.order_by("pk").values_list("sku", "quantity", "line_total")),
            tuple(o.refund_requests.values_list("state", "reason", "amount_requested")),
        )
        for o in orders
    ]


def test_the_same_seed_tells_the_same_story_and_another_seed_another():
    seed(orders=60, seed=11, no_live=True)
    first = _story(Order.objects.order_by("pk"))
    seed(orders=60, seed=11, no_live=True)
    second = _story(Order.objects.order_by("pk")[60:])
    seed(orders=60, seed=12, no_live=True)
    third = _story(Order.objects.order_by("pk")[120:])

    assert first == second
    assert first != third
