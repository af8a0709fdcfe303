"""Pieces every app's admin screens share: read-only rows and lists that never count a big table.

`ReadOnlyAdminMixin`: nobody edits these rows as a form; every change is a button or action
that calls a service. `DefaultQueueFilter`: a list filter whose empty value is the role's
queue. `EstimatedCountPaginator`: the admin asks the paginator for `count` on every page. At a million rows an exact
COUNT(*) is the slowest query of the page, so we count at most `cap` rows (the database
stops early); past the cap, PostgreSQL's planner estimate stands in for the exact figure.
`LargeTableAdmin` puts it on a ModelAdmin with the other settings such a list needs.
"""

import json

from django.contrib import admin
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _


class ReadOnlyAdminMixin:
    """Nobody edits these rows as a form: every change is a button or action that calls a
    service, so the admin itself may only show them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DefaultQueueFilter(admin.SimpleListFilter):
    """A filter whose empty value is the role's queue, shown as its first choice.

    While the list is searched and no choice was made, the empty value means every state: a
    request number typed in the search box finds it wherever it stands, not only in the queue.
    Subclasses write `queue_queryset` (what the choices mean); `queryset` is this rule.
    """

    default_label = ""
    searching_label = _("All (searching)")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.searching = bool(request.GET.get(SEARCH_VAR, "").strip())

    def queryset(self, request, queryset):
        if self.value() in (None, "") and self.searching:
            return queryset
        return self.queue_queryset(request, queryset)

    def queue_queryset(self, request, queryset):
        raise NotImplementedError

    def choices(self, changelist):
        value = self.value()
        yield {
            "selected": value in (None, ""),
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": self.searching_label if self.searching and value in (None, "") else self.default_label,
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class EstimatedCountPaginator(Paginator):
    cap = 10_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        capped = qs[: self.cap].count()
        if capped < self.cap:
            return capped
        connection = connections[qs.db]
        if connection.vendor != "postgresql":
            return capped
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return max(capped, int(plan[0]["Plan"]["Plan Rows"]))


class LargeTableAdmin:
    """ModelAdmin settings for a list over a table of millions of rows: no exact count of
    the whole table, and no facet counts (one COUNT per filter choice on every page view)."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator


def person(user) -> str:
    """A staff user as the screens name them: full name, else username; "—" for nobody.

    Plain text, never Django's link to the user admin, which only administrators may open
    (finance got a 403 from "approved by")."""
    if user is None:
        return "—"
    return user.get_full_name() or user.get_username()
