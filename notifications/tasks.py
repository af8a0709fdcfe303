"""Background sending of outbox rows."""

from notifications import senders


def notification_send(notification_id: int) -> None:
    senders.send_one(notification_id=notification_id)
