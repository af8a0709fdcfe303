"""What the order book tells the apps above it, so it need not know them.

`customer_changed` is sent when something that shapes a customer's risk was recorded (an
order, an address change, a message, a verdict on a refund request); the risk app listens
and recomputes the customer's profile in a task queued after commit. Senders: `orders.services` and
`refunds.services`; receiver: `risk.apps`.
"""

from django.dispatch import Signal

customer_changed = Signal()  # kwargs: customer_id
