"""Template tags for the staff home page."""

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from refunds.admin.requests import age_text
from refunds.selectors import home_queues

register = template.Library()


@register.simple_tag(takes_context=True)
def role_queues(context):
    """[(section title, [figure...])] for the logged-in user's roles, with ages as text."""
    user = context["request"].user
    sections = home_queues(user)
    for _title, figures in sections:
        for f in figures:
            f.age = age_text(f.oldest_at)
    return sections


@register.simple_tag(takes_context=True)
def staff_inbox(context):
    """(unread count, inbox url or '') for the logged-in user."""
    from notifications.selectors import unread_count_for

    user = context["request"].user
    try:
        url = reverse("admin:notifications_notification_changelist")
    except NoReverseMatch:
        url = ""
    return unread_count_for(user), url


# (label, admin url name, permission) of the reports that have no list of their own.
REPORTS = [
    (_("Risk report"), "admin:risk_report", "risk.view_risksettings"),
    (_("Daily reconciliation"), "admin:refunds_payout_reconciliation", "refunds.view_payout"),
]


@register.simple_tag(takes_context=True)
def staff_reports(context):
    """[(label, url)] of the reports the logged-in user may open."""
    user = context["request"].user
    return [(label, reverse(name)) for label, name, perm in REPORTS if user.has_perm(perm)]
