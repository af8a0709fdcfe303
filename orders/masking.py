"""Who may see customers' personal data, and how it is masked for the others.

roles.md: finance and admins see phone numbers and payment details; support and risk see
them masked; the warehouse sees neither (only order lines and the return address).
"""

from django.utils.translation import gettext_lazy as _

HIDDEN = _("(hidden)")

FULL, MASKED, NONE = "full", "masked", "none"


def pii_level(user) -> str:
    """FULL, MASKED or NONE for this staff user."""
    if user is None or not user.is_active:
        return NONE
    if user.is_superuser:
        return FULL
    # Cached on the user object: a changelist asks once per row.
    groups = getattr(user, "_rd_groups", None)
    if groups is None:
        groups = set(user.groups.values_list("name", flat=True))
        user._rd_groups = groups
    if "finance" in groups:
        return FULL
    if groups & {"support", "risk"}:
        return MASKED
    return NONE


def mask_phone(phone: str) -> str:
    """'+8613812340000' → '+86 138****0000'; keeps the country code, prefix and last four."""
    digits = "".join(c for c in phone or "" if c.isdigit() or c == "+")
    if not digits:
        return ""
    country = ""
    if digits.startswith("+86"):
        country, digits = "+86 ", digits[3:]
    elif digits.startswith("+"):
        country, digits = digits[:3] + " ", digits[3:]
    if len(digits) <= 4:
        return country + "*" * len(digits)
    head = digits[:3] if len(digits) > 7 else ""
    return f"{country}{head}{'*' * (len(digits) - len(head) - 4)}{digits[-4:]}"


def mask_reference(reference: str) -> str:
    """'PAY-ORD-000123' → 'PAY-****0123': the prefix and last four, enough to match a receipt."""
    reference = reference or ""
    if len(reference) <= 4:
        return "*" * len(reference)
    prefix = reference.split("-", 1)[0] + "-" if "-" in reference[:-4] else ""
    return f"{prefix}****{reference[-4:]}"


def mask_email(email: str) -> str:
    local, _, domain = (email or "").partition("@")
    if not domain:
        return "*" * len(local)
    return f"{local[:1]}***@{domain}"


def _shown(user, value: str, mask) -> str:
    """`value` as `user` may see it: whole, masked by `mask`, or hidden."""
    level = pii_level(user)
    if level == FULL:
        return value
    if level == MASKED:
        return mask(value)
    return str(HIDDEN) if value else ""


def phone_for(user, phone: str) -> str:
    return _shown(user, phone, mask_phone)


def email_for(user, email: str) -> str:
    return _shown(user, email, mask_email)


def reference_for(user, reference: str) -> str:
    return _shown(user, reference, mask_reference)


def can_see_customers(user) -> bool:
    """Names, messages, history: everyone except the warehouse."""
    return pii_level(user) != NONE
