"""SMS backends. Each has `send(*, to, body, reference) -> provider message id` and raises
`SendError`. `reference` is the notification's idempotency key: the same reference sent
twice must reach the phone once."""

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

from config.pii import mask_phone, redact
from notifications.backends import SendError

logger = logging.getLogger(__name__)


class ConsoleBackend:
    """Prints the message (the demo), with the number and any personal data in it masked:
    the console ends up in log files."""

    def send(self, *, to: str, body: str, reference: str) -> str:
        print(f"SMS to {mask_phone(to)} [{reference}]: {redact(body)}", flush=True)  # noqa: T201
        return f"console-{reference}"


# Like django.core.mail.outbox: tests read what was "sent" here.
outbox: list[dict] = []


class MemoryBackend:
    """Keeps messages in `outbox` (tests), deduplicated by reference like a real provider."""

    def send(self, *, to: str, body: str, reference: str) -> str:
        if not any(m["reference"] == reference for m in outbox):
            outbox.append({"to": to, "body": body, "reference": reference})
        return f"memory-{reference}"


class TwilioBackend:
    """Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
    HTTP basic auth with the account SID and auth token, form fields `To`, `From` (or
    `MessagingServiceSid`) and `Body`; `201` with the message's `sid`, errors as JSON
    `{"code", "message", "status"}`.

    The notification's reference goes in an `Idempotency-Key` header. A provider that
    honours it (our fake one does) makes a re-send after a crash harmless; one that does
    not may deliver that message twice, which we prefer to losing it.
    """

    def __init__(self):
        cfg = settings.NOTIFICATIONS
        self.base_url = cfg["SMS_API_URL"].rstrip("/")
        self.account_sid = cfg["SMS_ACCOUNT_SID"]
        self.auth_token = cfg["SMS_AUTH_TOKEN"]
        self.sender = cfg["SMS_FROM"]
        self.timeout = cfg["SMS_TIMEOUT_SECONDS"]

    def send(self, *, to: str, body: str, reference: str) -> str:
        url = f"{self.base_url}/2010-04-01/Accounts/{urllib.parse.quote(self.account_sid)}/Messages.json"
        fields = {"To": to, "Body": body}
        if self.sender.startswith("MG"):
            fields["MessagingServiceSid"] = self.sender
        else:
            fields["From"] = self.sender
        token = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - the URL is our own setting
            url,
            data=urllib.parse.urlencode(fields).encode(),
            method="POST",
            headers={
                "Authorization": f"Basic {token}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Idempotency-Key": reference,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            # 4xx means the request itself is wrong (bad number, bad credentials): sending it
            # again will not help. 429 and 5xx are the provider's trouble: try again later.
            permanent = 400 <= exc.code < 500 and exc.code not in (408, 409, 429)
            raise SendError(f"provider answered {exc.code}: {detail}", permanent=permanent) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise SendError(f"provider unreachable: {exc}") from None
        except ValueError:
            raise SendError("provider answered something that is not JSON") from None
        sid = payload.get("sid")
        if not sid:
            raise SendError(f"provider answered without a message sid: {payload!r}"[:500])
        return sid


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return exc.reason or ""
    return f"{data.get('code', '')} {data.get('message', '')}".strip() or str(exc.reason)
