"""What an erasure (`orders.services_erasure`) replaces in the outbox: every message to the
customer loses its recipient, its text and the values rendered into it (one still waiting
is not sent); a staff message about them keeps its text without their name."""

from django.db.models import Q

from notifications.models import Notification
from orders.services_erasure import ERASED, ErasurePart, ErasureSubject, scrub_rows

Status = Notification.Status
TO_CUSTOMERS = [Notification.Channel.SMS, Notification.Channel.EMAIL]


def erase(subject: ErasureSubject) -> None:
    cid = subject.customer_id
    addresses = [v for v in (subject.phone, subject.email) if v]
    to_them = Notification.objects.filter(channel__in=TO_CUSTOMERS).filter(
        Q(refund__customer_id=cid) | Q(refund__isnull=True, recipient__in=addresses)
    )
    to_them.filter(status__in=[Status.PENDING, Status.FAILED]).update(
        status=Status.DEAD, last_error="not sent: the customer's personal data was erased"
    )
    scrub_rows(subject, to_them, ["subject", "last_error"])
    to_them.update(recipient=ERASED, body=ERASED, context={})
    about_them = Notification.objects.filter(channel=Notification.Channel.STAFF).filter(
        Q(refund__customer_id=cid) | Q(context__customer_id=cid)
    )
    scrub_rows(subject, about_them, ["subject", "body"], json_fields=["context"])


PART = ErasurePart(name="notifications", erase=erase)
