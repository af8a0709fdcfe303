"""`GET /health/`: is the product up, and is its background work moving?

No authentication (a load balancer or a monitor polls it) and nothing sensitive in the
answer: counts and ages. A few indexed reads, and a write only when a stall opens or closes.
"""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.health.selectors import worker_liveness
from config.health.services import worker_stall_sync

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def health(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("health: the database is unreachable")
        return JsonResponse({"status": "error", "database": "unreachable", "workers": None}, status=503)
    try:
        liveness = worker_liveness()
        worker_stall_sync(liveness=liveness)
    except Exception:
        # The broker (Redis) or a query failed: say so instead of a 500 page.
        logger.exception("health: could not read the queue")
        return JsonResponse({"status": "error", "database": "ok", "workers": None}, status=503)
    stalled = liveness.stalled
    body = {"status": "stalled" if stalled else "ok", "database": "ok", "workers": liveness.as_dict()}
    if stalled:
        body["problem"] = liveness.problem()
    return JsonResponse(body, status=503 if stalled else 200)
