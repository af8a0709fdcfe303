"""A local HTTP server that plays Twilio's Messages API for the tests.

`POST /2010-04-01/Accounts/{sid}/Messages.json`, basic auth, form fields `To`/`From`/`Body`,
`201 {"sid": ...}`; errors as `{"code", "message", "status"}`. Like a real provider it
delivers a message once per `Idempotency-Key` and answers a repeat with the first `sid`.

It can fail a share of requests at random, half before accepting (503: nothing sent) and
half after (500 although the SMS went out: the ambiguous case a client must retry safely),
and block on one recipient until released, so a test can kill the sender mid-request.
Every request is logged per key, so tests can check that each message was delivered once
and that the client sent a key again only after a failure.
"""

import base64
import contextlib
import json
import random
import re
import threading
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
PORTS = range(8300, 8350)  # this area's TCP ports on the shared machine


class FakeTwilio:
    def __init__(self, *, account_sid="ACtest", auth_token="token", fail_rate=0.0, seed=None):  # noqa: S107
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.fail_rate = fail_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.delivered: list[dict] = []  # one entry per message that reached a phone
        self.sid_by_key: dict[str, str] = {}
        self.outcomes: dict[str, list[str]] = defaultdict(list)  # key -> response of each request
        self.block_to: str | None = None
        self.blocked = threading.Event()
        self.release = threading.Event()
        self._server = None
        self.url = ""

    # --- what tests read ---------------------------------------------------------------

    def requests_for(self, key: str) -> int:
        return len(self.outcomes[key])

    def failures_for(self, key: str) -> int:
        return sum(1 for o in self.outcomes[key] if o != "ok" and o != "duplicate")

    def deliveries_by_key(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for message in self.delivered:
            counts[message["key"]] += 1
        return dict(counts)

    # --- the server --------------------------------------------------------------------

    def start(self) -> str:
        handler = _handler_for(self)
        for port in PORTS:
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no free port in 8300-8349")
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self):
        self.release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, *, path: str, auth: str, key: str, form: dict) -> tuple[int, dict]:
        match = PATH.match(path)
        if not match:
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if match["sid"] != self.account_sid or auth != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        to, body = form.get("To", ""), form.get("Body", "")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            return 400, {"code": 21211, "message": f"The 'To' number {to} is not a valid phone number.", "status": 400}
        if not body:
            return 400, {"code": 21602, "message": "Message body is required.", "status": 400}
        key = key or uuid.uuid4().hex  # without a key every request is a new message
        with self._lock:
            roll = self._random.random()
            if roll < self.fail_rate / 2:
                self.outcomes[key].append("refused")
                return 503, {"code": 20503, "message": "Service unavailable", "status": 503}
            if key in self.sid_by_key:
                sid, outcome = self.sid_by_key[key], "duplicate"
            else:
                sid, outcome = "SM" + uuid.uuid4().hex, "ok"
                self.sid_by_key[key] = sid
                self.delivered.append({"key": key, "sid": sid, "to": to, "body": body, "from": form.get("From", "")})
            if roll < self.fail_rate:
                self.outcomes[key].append(outcome + "+500")
                return 500, {"code": 20500, "message": "Internal Server Error", "status": 500}
            self.outcomes[key].append(outcome)
            block = to == self.block_to and outcome == "ok"
        if block:
            # Accepted and delivered, but the answer never comes back: the sender dies waiting.
            self.blocked.set()
            self.release.wait(timeout=120)
        return 201, {"sid": sid, "status": "queued", "to": to, "body": body, "account_sid": self.account_sid}


def _handler_for(provider: FakeTwilio):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            status, payload = provider.handle(
                path=self.path,
                auth=self.headers.get("Authorization", ""),
                key=self.headers.get("Idempotency-Key", ""),
                form=form,
            )
            data = json.dumps(payload).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002
            pass

    return Handler
