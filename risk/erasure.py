"""What an erasure (`orders.services_erasure`) replaces in risk: the customer's name in
watch-list notes and evidence. Their profile holds counts, not personal data; it and the
profiles of the accounts it shared a phone or an address with are recomputed after commit,
since the erased phone and addresses no longer link them."""

from orders.services_erasure import ErasurePart, ErasureSubject, scrub_rows
from risk import profiles, services
from risk.models import WatchlistEntry


def erase(subject: ErasureSubject) -> None:
    linked = profiles.linked_customers(subject.customer_id)  # while the phone and addresses still link them
    scrub_rows(subject, WatchlistEntry.objects.filter(customer_id=subject.customer_id), ["note"], json_fields=["evidence"])
    for customer_id in linked:
        services.customer_changed(customer_id=customer_id)


PART = ErasurePart(name="risk", erase=erase)
