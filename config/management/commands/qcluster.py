"""`python manage.py qcluster`, with a cluster that survives a worker killed by the kernel.

This replaces django-q2's command of the same name: Django's `get_commands` lets the first
app in INSTALLED_APPS that has a command win, and `health` comes before `django_q`. The
options and the deploy command stay django-q2's; only the Sentinel differs (see
`config.q2_cluster`).
"""

import os

from django.conf import settings
from django_q.management.commands import qcluster

from config.q2_cluster import HealingCluster


class Command(qcluster.Command):
    help = "Starts a Django Q Cluster whose worker pool restarts on fresh queues when a worker is killed."

    def handle(self, *args, **options):
        settings.SECRET_KEY  # noqa: B018 - as django-q2: signing needs it, fail before forking
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = HealingCluster()
        cluster.start()
        if options.get("run_once", False):
            cluster.stop()
