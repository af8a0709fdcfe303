"""`python manage.py check_workers`: exit 0 while background work moves, 1 with a sentence
when it does not. For a supervisor's health probe or a cron/systemd timer next to the
cluster; it also raises (once) and closes the administrators' inbox alert."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from config.health.selectors import worker_liveness
from config.health.services import worker_stall_sync


class Command(BaseCommand):
    help = "Exit non-zero, with a sentence, when queued django-q2 work has stopped moving; alert the administrators once."

    def handle(self, *args, **options):
        try:
            liveness = worker_liveness()
            worker_stall_sync(liveness=liveness)
        except DatabaseError as exc:
            raise CommandError(f"The database is unreachable, so the queue can not be checked: {exc}".strip()) from None
        if liveness.stalled:
            raise CommandError(liveness.problem())
        waited = liveness.oldest_queued_seconds
        idle = liveness.last_finished_seconds
        self.stdout.write(
            f"Workers OK on queue {liveness.queue!r}: {liveness.waiting} task(s) waiting"
            + (f", the oldest for {waited:.0f} s" if waited is not None else "")
            + (f"; last task finished {idle:.0f} s ago." if idle is not None else "; no task has finished yet.")
        )
