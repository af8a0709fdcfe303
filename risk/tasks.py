"""django-q2 tasks for risk. They take ids and are safe to run twice (they recompute)."""

from risk import services


def recompute_customer(customer_id: int) -> None:
    services.recompute_customer(customer_id=customer_id)


def recompute_all() -> int:
    return services.recompute_all()
