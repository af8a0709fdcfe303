"""Pieces the role screens share."""

from django.contrib import admin


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
    """A filter whose empty value is the role's queue, shown as its first choice."""

    default_label = ""

    def choices(self, changelist):
        value = self.value()
        yield {
            "selected": value in (None, ""),
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": self.default_label,
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }
