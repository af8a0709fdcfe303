"""Score the `simulate_abuse` population and compare with the truth (run by hand).

    createdb -h 127.0.0.1 -U postgres rd_risk_sim   # once
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rd_risk_sim \\
        python bench/risk_eval.py --honest 2000 --abusers 200 --seed 5

Runs the full recompute, scores every simulated customer with the production scorer, and
prints precision and recall at the default policy's risk threshold, the ROC AUC, recall per
abuser kind, and the watch list's own hit rates. The scorer never reads `SimulationTruth`.
"""

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402


def roc_auc(scored: list[tuple[int, bool]]) -> float:
    """Probability that a random abuser outscores a random honest customer (ties count half)."""
    pos = [s for s, y in scored if y]
    neg = [s for s, y in scored if not y]
    if not pos or not neg:
        return float("nan")
    # rank-sum (Mann-Whitney U) with average ranks for ties
    ordered = sorted(scored, key=lambda t: t[0])
    ranks: dict[int, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            j += 1
        ranks[ordered[i][0]] = (i + j + 1) / 2
        i = j
    rank_sum = sum(ranks[s] for s in pos)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--honest", type=int, default=2000)
    parser.add_argument("--abusers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="simulate again even if labels exist")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)

    from refunds.rules import policy_for
    from risk import services
    from risk.models import RiskProfile, RiskSettings, SimulationTruth, WatchlistEntry
    from risk.scoring import score_profile

    if args.fresh or not SimulationTruth.objects.exists():
        call_command("simulate_abuse", honest=args.honest, abusers=args.abusers, seed=args.seed)
    started = time.monotonic()
    services.recompute_all()
    print(f"full recompute: {time.monotonic() - started:.2f}s")

    threshold = policy_for(None).risk_threshold
    settings = RiskSettings.current()
    now = timezone.now()
    truth = dict(SimulationTruth.objects.values_list("customer_id", "is_abuser"))
    kinds = dict(SimulationTruth.objects.values_list("customer_id", "kind"))
    scored = [
        (score_profile(p, settings, now).score, truth[p.customer_id], p.customer_id)
        for p in RiskProfile.objects.filter(customer_id__in=list(truth))
    ]
    tp = sum(1 for s, y, _ in scored if y and s > threshold)
    fp = sum(1 for s, y, _ in scored if not y and s > threshold)
    fn = sum(1 for s, y, _ in scored if y and s <= threshold)
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    print(f"customers: {len(scored)} ({sum(y for _, y, _ in scored)} abusers); threshold: score > {threshold}")
    print(f"precision: {precision:.3f}  recall: {recall:.3f}  ROC AUC: {roc_auc([(s, y) for s, y, _ in scored]):.3f}")
    missed = Counter(kinds[c] for s, y, c in scored if y and s <= threshold)
    total = Counter(kinds[c] for _, y, c in scored if y)
    print("recall per kind: " + ", ".join(f"{k} {1 - missed[k] / n:.2f}" for k, n in sorted(total.items())))
    flagged_honest = Counter(kinds[c] for s, y, c in scored if not y and s > threshold)
    print(f"honest customers above the threshold by kind: {dict(flagged_honest) or 'none'}")
    listed = set(WatchlistEntry.objects.filter(source="auto").values_list("customer_id", flat=True))
    wl_tp = sum(1 for c in listed if truth.get(c))
    print(
        f"watch list: {len(listed)} listed automatically, {wl_tp} abusers "
        f"(recall {wl_tp / max(1, sum(truth.values())):.2f}, precision {wl_tp / max(1, len(listed)):.2f})"
    )


if __name__ == "__main__":
    main()
