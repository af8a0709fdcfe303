"""What an erasure (`orders.services_erasure`) replaces in refunds: the customer's notes and
answers, the evidence snapshots that copied their name, messages and addresses, and their
name wherever staff or the gateway wrote it. Amounts, states and references stay.

An open request blocks the erasure: it is still being decided or paid, and needs the
customer; the retention sweeper counts a request's last change as the customer's activity.
"""

from orders.services_erasure import ERASED, ErasurePart, ErasureSubject, scrub_rows
from refunds.models import Export, Inspection, Payout, RefundEvent, RefundRequest, WalletEntry

# Events whose note is what the customer wrote (through their channel): gone entirely.
CUSTOMER_WORDS = ["submit", "resume", "withdraw"]


def erase(subject: ErasureSubject) -> None:
    cid = subject.customer_id
    RefundRequest.objects.filter(customer_id=cid).exclude(customer_note="").update(customer_note=ERASED)
    RefundEvent.objects.filter(
        request__customer_id=cid, actor_kind=RefundEvent.ActorKind.CHANNEL, action__in=CUSTOMER_WORDS
    ).exclude(note="").update(note=ERASED)
    scrub_rows(subject, RefundEvent.objects.filter(request__customer_id=cid).exclude(note=""), ["note"])
    for refund in RefundRequest.objects.filter(customer_id=cid).only("pk", "evidence"):
        RefundRequest.objects.filter(pk=refund.pk).update(evidence=_erased_evidence(refund.evidence, subject))
    scrub_rows(
        subject,
        RefundRequest.objects.filter(customer_id=cid),
        ["decision_reason", "escalation_reason"],
        json_fields=["alternative", "rule_trace", "risk_signals"],
    )
    # Another account with the same phone had this customer's messages copied into its
    # evidence report (refunds.evidence reads messages by phone).
    if subject.phone and subject.message_bodies:
        bodies = set(subject.message_bodies)
        others = RefundRequest.objects.filter(customer__phone=subject.phone).exclude(customer_id=cid).only("pk", "evidence")
        for refund in others:
            messages = (refund.evidence or {}).get("messages") or []
            if any(m.get("body") in bodies for m in messages):
                evidence = {
                    **refund.evidence,
                    "messages": [{**m, "body": ERASED} if m.get("body") in bodies else m for m in messages],
                }
                RefundRequest.objects.filter(pk=refund.pk).update(evidence=evidence)
    scrub_rows(subject, Inspection.objects.filter(request__customer_id=cid).exclude(note=""), ["note"])
    scrub_rows(subject, Payout.objects.filter(request__customer_id=cid), ["error", "status_answer"])
    scrub_rows(subject, WalletEntry.objects.filter(customer_id=cid).exclude(note=""), ["note"])
    # An export's filter may hold a search term (few rows: they are deleted after EXPORT_KEEP_DAYS).
    scrub_rows(subject, Export.objects.all(), ["error"], json_fields=["filters"])


def _erased_evidence(evidence: dict, subject: ErasureSubject) -> dict:
    """The snapshot without the customer in it; the order, amounts and history stay."""
    if not evidence:
        return evidence
    evidence = dict(evidence)
    if isinstance(evidence.get("customer"), dict):
        evidence["customer"] = {**evidence["customer"], "name": ERASED, "external_id": ERASED}
    if isinstance(evidence.get("request"), dict) and evidence["request"].get("note"):
        evidence["request"] = {**evidence["request"], "note": ERASED}
    # Messages read by phone may be another account's; only this customer's words go.
    evidence["messages"] = [
        {**m, "body": ERASED} if m.get("body") in subject.message_bodies else m for m in evidence.get("messages") or []
    ]
    evidence["address_changes"] = [{**a, "to": ERASED} for a in evidence.get("address_changes") or []]
    return subject.scrub_json(evidence)


PART = ErasurePart(
    name="refunds",
    erase=erase,
    open_work=lambda: RefundRequest.objects.exclude(state__in=RefundRequest.TERMINAL),
    activity=lambda since: RefundRequest.objects.filter(updated_at__gte=since),
)
