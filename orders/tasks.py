"""django-q2 tasks of the order book. They take ids (or nothing) and are safe to run twice."""

from orders import services_erasure


def anonymize_inactive_customers() -> int:
    """The nightly retention sweeper (schedule in migrations): erase the customers inactive
    for `CUSTOMER_RETENTION_DAYS`. Returns how many were erased."""
    return services_erasure.customers_anonymize_inactive().done
