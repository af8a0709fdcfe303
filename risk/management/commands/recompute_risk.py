"""`manage.py recompute_risk [--customer ID]`: the full (or one customer's) profile recompute."""

import time

from django.core.management.base import BaseCommand

from risk import services


class Command(BaseCommand):
    help = "Recompute risk profiles and watch-list patterns (all customers, or one)."

    def add_arguments(self, parser):
        parser.add_argument("--customer", type=int, help="only this customer and the accounts linked to it")

    def handle(self, *args, customer=None, **options):
        started = time.monotonic()
        if customer:
            services.recompute_customer(customer_id=customer)
            self.stdout.write(f"recomputed customer {customer} in {time.monotonic() - started:.2f}s")
        else:
            n = services.recompute_all()
            self.stdout.write(f"recomputed {n} profiles in {time.monotonic() - started:.1f}s")
