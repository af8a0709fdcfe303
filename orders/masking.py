"""Who may see customers' personal data, and how it is masked for the others.

roles.md: finance and admins see phone numbers and payment details; support and risk see
them masked; the warehouse sees neither (only order lines and the return address).
"""

from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext_lazy as _

# The masks themselves live in the shared kit, which masks logs and stored errors the same way.
from config.pii import mask_email as mask_email
from config.pii import mask_phone as mask_phone

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


def mask_reference(reference: str) -> str:
    """'PAY-ORD-000123' → 'PAY-****0123': the prefix and last four, enough to match a receipt."""
    reference = reference or ""
    if len(reference) <= 4:
        return "*" * len(reference)
    prefix = reference.split("-", 1)[0] + "-" if "-" in reference[:-4] else ""
    return f"{prefix}****{reference[-4:]}"


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


# --- searching and filtering by personal data ----------------------------------------------

# The columns a masked role sees masked; a search or a list filter on one of them would tell
# the hidden digits back ("does a customer's phone start with 1381234?"), a few searches
# recovering the whole number.
MASKED_COLUMNS = {("orders", "customer", "phone"), ("orders", "customer", "email"), ("orders", "address", "phone")}
MASKED_COLUMNS |= {("orders", "payment", "reference")}


def may_search_masked(user) -> bool:
    """Search or filter by phone, e-mail or payment reference: only who sees them whole."""
    return pii_level(user) == FULL


def may_search_last_four(user) -> bool:
    """The last four digits of a phone are shown to the masked roles; searching them reveals nothing."""
    return pii_level(user) in (FULL, MASKED)


def lookup_touches_masked(model, lookup: str) -> bool:
    """Whether a queryset lookup such as `customer__phone__startswith` reads a masked column."""
    opts = model._meta
    for part in lookup.split("__"):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:  # the rest is a transform or a lookup
            return False
        if (field.model._meta.app_label, field.model._meta.model_name, field.name) in MASKED_COLUMNS:
            return True
        if not field.is_relation or field.related_model is None:
            return False
        opts = field.related_model._meta
    return False
