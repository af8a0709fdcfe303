"""The refunds app's permission codes, spelled once.

The models declare the custom permissions (`Meta.permissions`); `refunds/roles.py` gives them
to the roles; services, admin views and exports check them by these names.
"""

REVIEW = "refunds.review_refundrequest"
CREATE_FOR_CUSTOMER = "refunds.create_for_customer"
VIEW_EVIDENCE = "refunds.view_evidence"
RECORD_VERDICT = "refunds.record_verdict"
RECEIVE_RETURN = "refunds.receive_return"
VIEW_INSPECTION = "refunds.view_inspection"
VIEW_PAYOUT = "refunds.view_payout"
APPROVE_PAYOUT = "refunds.approve_payout"
RETRY_PAYOUT = "refunds.retry_payout"
EXPORT_PAYOUT = "refunds.export_payout"
RECONCILE_PAYOUT = "refunds.reconcile_payout"
