"""Channel backends, chosen by settings like Django's e-mail backends.

`NOTIFICATIONS["SMS_BACKEND"]` names the SMS backend class; e-mail goes through
`django.core.mail` and so through `EMAIL_BACKEND`; staff messages are rows in our own
database and need no backend.
"""

from django.conf import settings
from django.utils.module_loading import import_string


class SendError(Exception):
    """A send that did not go out. `permanent` ones are never retried (bad number, refused)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def get_sms_backend():
    return import_string(settings.NOTIFICATIONS["SMS_BACKEND"])()
