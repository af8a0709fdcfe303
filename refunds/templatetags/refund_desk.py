"""Template tags for the staff home page."""

from django import template
from django.urls import NoReverseMatch, reverse

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
