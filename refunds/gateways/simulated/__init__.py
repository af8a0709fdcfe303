"""The simulated payment gateway: an adapter with its own ledger, for the demo and the tests.

A Django app of its own (label `simulated_gateway`) so that its tables are not the
product's: the payment provider's books are the provider's, and here they stand in for them.
"""

from refunds.gateways.simulated.gateway import SimulatedGateway

__all__ = ["SimulatedGateway"]
