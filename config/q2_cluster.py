"""A django-q2 cluster that survives a worker killed by the kernel (`kill -9`, the OOM killer).

django-q2 1.11's workers share one `multiprocessing.Queue` for tasks and one for results.
`Queue.get()` holds the queue's reader lock, a POSIX semaphore, for as long as it waits on
the pipe, so the idle worker waiting for the next task holds it. A worker SIGKILLed there
never releases it: every other worker, and the replacement the Sentinel forks, block on it
forever. Tasks stay queued, nothing finishes, and the ORM broker's redelivery after `retry`
only feeds the same dead queue (reproduced by `bench/q2_kill_worker.py --stock`). The
result queue's writer lock, held while a feeder thread writes a result, and the monitor's
hold on the result queue's reader lock, go the same way. A semaphore owned by a dead process
can not be told apart from one a live worker holds, and the pipe may hold half a message, so
the only safe repair is new queues.

`HealingSentinel` does that: when a worker, the pusher or the monitor is killed by a signal
the Sentinel did not send, it retires the whole generation (pool, pusher, monitor and both
queues) and starts a new one on fresh queues, logging it at CRITICAL. A retired worker that
is running a task finishes it (its result still reaches the retired monitor, up to
`Q_TIMEOUT`); idle ones are stopped at once. Tasks the pusher had already taken from the
broker are moved from the retired task queue to the new one; any it can not read (half a
message) come back from the ORM broker after `Q_RETRY`, or on Redis are re-driven by the
project's sweepers. Processes that exit on their own (a timeout, a recycle, the pusher
giving up on a broken broker connection) hold no lock and are replaced as django-q2 does.
"""

import contextlib
import os
import queue as queue_module
import time
import uuid
from dataclasses import dataclass
from multiprocessing import Event, current_process
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler

from django_q import cluster as q2_cluster
from django_q.conf import Conf, logger
from django_q.humanhash import humanize
from django_q.queues import Queue
from django_q.scheduler import scheduler
from django_q.status import Stat

IDLE, TIMED_OUT, RECYCLED = -1, 0, -2  # a worker's `timer` values besides its seconds left
STOP = "STOP"  # django-q2's poison pill
# How long a retired monitor may take to save the results already in its queue.
MONITOR_DRAIN_SECONDS = 10


@dataclass
class _Retired:
    """A generation taken out of service after a sudden death, left to wind down."""

    workers: list[BaseProcess]
    monitor: BaseProcess
    task_queue: Queue
    result_queue: Queue
    deadline: float
    salvaged: bool = False
    drain_deadline: float = 0.0


def _raw(timer):
    # A worker holds its timer's lock while it hands a result over; read without it, so a
    # worker killed inside that block can not stop the guard.
    return timer.get_obj()


def _killed(process: BaseProcess) -> bool:
    return process.exitcode is not None and process.exitcode < 0


class HealingSentinel(q2_cluster.Sentinel):
    def __init__(self, *args, **kwargs):
        self.retired: list[_Retired] = []
        self.rebuilds = 0
        super().__init__(*args, **kwargs)

    # --- the guard loop: django-q2's, with sudden deaths sent to `rebuild` -----------------

    def guard(self):
        name = humanize(self.cluster_id.hex) + f" [{self.queue_name()}]"
        logger.info("%s guarding cluster %s", current_process().name, name)
        self.start_event.set()
        Stat(self).save()
        logger.info("Q Cluster %s running.", name)
        counter = 0
        cycle = Conf.GUARD_CYCLE
        while True:
            self.check_processes(cycle)
            self.reap_retired()
            counter += cycle
            if counter >= 30 and Conf.SCHEDULER:
                counter = 0
                scheduler(broker=self.broker)
            Stat(self).save()
            if self.stop_event.wait(cycle):
                break
        self.stop()

    def check_processes(self, cycle: float) -> None:
        dead = [p for p in [*self.pool, self.monitor, self.pusher] if not p.is_alive()]
        killed = next((p for p in dead if _killed(p)), None)
        if killed is not None:
            self.rebuild(killed)
            return
        for p in dead:
            self.reincarnate(p)  # exited on its own: a timeout, a recycle, a broker error
        for p in list(self.pool):
            if p in dead:
                continue
            lock = p.timer.get_lock()
            if not lock.acquire(timeout=cycle):
                continue  # handing over a result, or just killed: seen next cycle
            try:
                if _raw(p.timer).value == TIMED_OUT:
                    self.reincarnate(p)  # django-q2 terminates it and forks a new one
                elif _raw(p.timer).value > 0:
                    _raw(p.timer).value -= cycle
            finally:
                lock.release()

    # --- rebuild -------------------------------------------------------------------------

    def rebuild(self, killed: BaseProcess) -> None:
        """Retire the generation `killed` belonged to and start a new one on fresh queues."""
        role = "monitor" if killed is self.monitor else "pusher" if killed is self.pusher else "worker"
        logger.critical(
            "%s %s (pid %s) was killed by signal %s; its queue locks may be held forever, so the "
            "pool, pusher and monitor restart on new queues",
            role,
            killed.name,
            killed.pid,
            -killed.exitcode,
        )
        self.event_out.set()
        if self.pusher.is_alive():
            self.pusher.terminate()  # it may be blocked putting into the full old queue
        self.pusher.join(5)
        busy = []
        for p in self.pool:
            if p.is_alive() and _raw(p.timer).value > 0:
                busy.append(p)
            elif p.is_alive():
                p.terminate()  # idle: blocked on the old queue, and holding nothing we need
        retired = _Retired(
            workers=busy,
            monitor=self.monitor,
            task_queue=self.task_queue,
            result_queue=self.result_queue,
            # a running task gets what django-q2 would give it, plus its 3 s of grace
            deadline=time.monotonic() + (self.timeout or Conf.TIMEOUT or 60) + 3,
        )
        self.retired.append(retired)
        self.task_queue = Queue(maxsize=Conf.QUEUE_LIMIT) if Conf.QUEUE_LIMIT else Queue()
        self.result_queue = Queue()
        self.event_out = Event()
        self.rebuilds += 1
        self.reincarnations += 1
        self.spawn_cluster()
        self.reap_retired()

    def reap_retired(self) -> None:
        now = time.monotonic()
        for gen in list(self.retired):
            for p in list(gen.workers):
                if p.is_alive() and (_raw(p.timer).value <= 0 or now > gen.deadline):
                    p.terminate()  # done with its task (now waiting on the old queue) or out of time
                    p.join(1)
                if not p.is_alive():
                    gen.workers.remove(p)
            if gen.workers:
                continue
            if not gen.salvaged:
                gen.salvaged = True
                moved = self.salvage(gen.task_queue)
                if moved:
                    logger.warning("moved %s prefetched task(s) from the retired queue to the new one", moved)
                with contextlib.suppress(Exception):
                    gen.result_queue.put(STOP)
                gen.drain_deadline = now + MONITOR_DRAIN_SECONDS
            if gen.monitor.is_alive() and now < gen.drain_deadline:
                continue
            if gen.monitor.is_alive():
                gen.monitor.terminate()
            gen.monitor.join(1)
            for q in (gen.task_queue, gen.result_queue):
                # never wait at exit for a feeder thread stuck on a dead process's lock
                q.cancel_join_thread()
                q.close()
            self.retired.remove(gen)

    def salvage(self, old: Queue) -> int:
        """Move the tasks still in a retired queue to the live one; return how many.

        Read from the pipe directly, without the reader lock a dead worker may hold; every
        reader of it is gone by now. Non-blocking, so half a message (a process killed
        mid-read or mid-write) ends the salvage instead of hanging the guard.
        """
        reader = old._reader
        moved = 0
        try:
            os.set_blocking(reader.fileno(), False)
            while reader.poll(0):
                task = ForkingPickler.loads(reader.recv_bytes())
                if task == STOP:
                    continue
                self.task_queue.put(task, block=False)
                moved += 1
        except queue_module.Full:
            logger.warning("the new task queue is full; the rest come back from the broker")
        except Exception:  # a torn message: the broker redelivers the rest
            logger.warning("stopped moving tasks from the retired queue at a torn message", exc_info=True)
        return moved

    def stop(self):
        # Retired workers still running a task finish it, as the live ones do.
        while self.retired:
            self.reap_retired()
            Stat(self).save()
            time.sleep(0.1)
        super().stop()


class HealingCluster(q2_cluster.Cluster):
    """django-q2's Cluster with `HealingSentinel` (its `start` names the Sentinel class)."""

    def start(self) -> int:
        if q2_cluster.setproctitle:
            q2_cluster.setproctitle.setproctitle(f"qcluster {current_process().name} {self.name}")
        self.stop_event = Event()
        self.start_event = Event()
        self.sentinel = q2_cluster.get_mp_context().Process(
            target=HealingSentinel,
            name=f"Process-{uuid.uuid4().hex}",
            args=(self.stop_event, self.start_event, self.cluster_id, self.broker, self.timeout),
        )
        self.sentinel.start()
        logger.info("Q Cluster %s starting.", self.name)
        # As django-q2: poll, never wait(), so a signal during the start can not deadlock.
        while self.start_event and not self.start_event.is_set():
            if not self.sentinel.is_alive():
                if self.sentinel.exitcode == 0:
                    break
                raise RuntimeError(f"Q Cluster {self.name} failed to start: sentinel exited with code {self.sentinel.exitcode}")
            time.sleep(0.1)
        return self.pid
