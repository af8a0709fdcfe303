"""The labelled simulation: truth kept apart, and the scorer separates the groups."""

import pytest
from django.core.management import call_command
from django.utils import timezone

from orders.models import Customer
from risk import services
from risk.models import RiskProfile, RiskSettings, SimulationTruth
from risk.scoring import score_profile

pytestmark = pytest.mark.django_db


def test_simulate_abuse_labels_every_customer_and_hides_the_label_from_the_data():
    call_command("simulate_abuse", honest=60, abusers=20, seed=3, stdout=open("/dev/null", "w"))  # noqa: SIM115
    truth = dict(SimulationTruth.objects.values_list("customer_id", "kind"))
    assert Customer.objects.count() == len(truth)
    assert {"serial_returner", "wardrobing", "false_not_received", "address_churn", "linked_accounts"} <= set(truth.values())
    # nothing a scorer reads carries the label
    assert not Customer.objects.filter(external_id__iregex=r"abus|honest|ward|ring").exists()


def test_the_scorer_ranks_abusers_above_honest_customers_on_a_small_population():
    call_command("simulate_abuse", honest=120, abusers=40, seed=9, stdout=open("/dev/null", "w"))  # noqa: SIM115
    services.recompute_all()
    s, now = RiskSettings.current(), timezone.now()
    truth = dict(SimulationTruth.objects.values_list("customer_id", "is_abuser"))
    scores = {p.customer_id: score_profile(p, s, now).score for p in RiskProfile.objects.all()}
    flagged = {c for c, score in scores.items() if score > 70}
    abusers = {c for c, y in truth.items() if y}
    assert len(flagged & abusers) / len(abusers) >= 0.8
    assert len(flagged - abusers) <= 1
