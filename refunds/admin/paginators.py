"""A paginator for changelists over big tables: it never runs an unbounded COUNT(*).

Django's admin asks the paginator for `count` on every page view. On a table with a million
rows that COUNT is the slowest query of the page, so we count at most `cap` rows (a
`SELECT COUNT(*) FROM (... LIMIT cap)` the database stops early on) and show "cap+" beyond.
Pair it with `show_full_result_count = False` on the ModelAdmin.
"""

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap].count()

    @property
    def is_capped(self) -> bool:
        return self.count >= self.cap
