"""Every change of a refund request's or payout's state happens here, and only here.

Each service is keyword-only and takes the `actor`. Inside one transaction it locks the rows
it changes (always in the order order → order lines → request → payout, by pk, so two
services never deadlock), checks who may do it, calls the django-fsm transition, saves with
`update_fields`, writes one `RefundEvent`, and registers side effects (tasks, outbox rows)
to run after commit. A refused call raises a `RefundError` subclass and changes nothing.

One module per workflow: `intake` (a request is admitted and its amounts held), `evaluation`
(the rules decide), `review` (support decides), `returns` (the parcel comes back),
`payouts` (finance pays), with the locks, events and holds they share in `base` and
`holds`. Import the services from here; the modules' own helpers stay theirs.
"""

from refunds.services.base import build_event, lock_payout, lock_refund, record_event
from refunds.services.evaluation import refund_evaluate
from refunds.services.intake import LineRequest, refund_submit
from refunds.services.payouts import (
    OPEN_PAYOUT_STATES,
    BulkApproval,
    four_eyes_limit,
    payout_approve,
    payout_approve_bulk,
    payout_ask_gateway,
    payout_check_status,
    payout_claim,
    payout_execute,
    payout_record_result,
    payout_record_status,
    payout_retry,
    payout_send,
    payout_void,
)
from refunds.services.policy import LimitChange, payout_settings_update, policy_raises, policy_save
from refunds.services.returns import (
    carrier_scan_record,
    find_return,
    refund_expire,
    return_inspect,
    return_receive,
    return_ship,
    return_tracking_seen,
)
from refunds.services.review import (
    refund_accept_alternative,
    refund_approve,
    refund_ask_customer,
    refund_decline_alternative,
    refund_offer_alternative,
    refund_record_verdict,
    refund_reject,
    refund_resume,
    refund_withdraw,
)
from refunds.services.sla import sla_sweep

__all__ = [
    "OPEN_PAYOUT_STATES",
    "BulkApproval",
    "LimitChange",
    "LineRequest",
    "build_event",
    "carrier_scan_record",
    "find_return",
    "four_eyes_limit",
    "lock_payout",
    "lock_refund",
    "payout_approve",
    "payout_approve_bulk",
    "payout_ask_gateway",
    "payout_check_status",
    "payout_claim",
    "payout_execute",
    "payout_record_result",
    "payout_record_status",
    "payout_retry",
    "payout_send",
    "payout_settings_update",
    "policy_raises",
    "policy_save",
    "payout_void",
    "record_event",
    "refund_accept_alternative",
    "refund_approve",
    "refund_ask_customer",
    "refund_decline_alternative",
    "refund_evaluate",
    "refund_expire",
    "refund_offer_alternative",
    "refund_record_verdict",
    "refund_reject",
    "refund_resume",
    "refund_submit",
    "refund_withdraw",
    "return_inspect",
    "return_receive",
    "return_ship",
    "return_tracking_seen",
    "sla_sweep",
]
