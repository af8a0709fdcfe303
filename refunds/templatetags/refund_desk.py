"""Template tags for the staff home page."""

from django import template
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from notifications.selectors import unread_count_for
from refunds import permissions as perms
from refunds.admin.home import home_queues
from refunds.admin.requests import age_text

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
    user = context["request"].user
    return unread_count_for(user), reverse("admin:notifications_notification_changelist")


# (label, admin url name, permission) of the reports that have no list of their own.
REPORTS = [
    (_("Risk report"), "admin:risk_report", "risk.view_risksettings"),
    (_("Daily reconciliation"), "admin:refunds_payout_reconciliation", perms.VIEW_PAYOUT),
]


@register.simple_tag(takes_context=True)
def staff_reports(context):
    """[(label, url)] of the reports the logged-in user may open."""
    user = context["request"].user
    return [(label, reverse(name)) for label, name, perm in REPORTS if user.has_perm(perm)]
