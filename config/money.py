"""How money reads on every screen: two decimals, grouped thousands, its currency after it.

One function, so a list, a page and a confirmation never disagree (`4290.80000000000` from an
unquantized SUM, `1133` from a whole number); templates use the `money` filter
(`{% load money %}{{ amount|money:currency }}`), Python code `money(amount, currency)`.
Spreadsheets keep numbers, not this text (`refunds.resources`).
"""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(amount, currency: str = "") -> str:
    """`Decimal("4290.8"), "CNY"` → `"4,290.80 CNY"`; None → `"—"`. Never takes a float's digits:
    a float is refused, as money never is one."""
    if amount is None or amount == "":
        return "—"
    if isinstance(amount, float):
        raise TypeError("money() takes a Decimal or an int, never a float.")
    value = Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    text = f"{value:,.2f}"
    return f"{text} {currency}" if currency else text
