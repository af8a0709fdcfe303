"""E-mail backends of our own, used through Django's `EMAIL_BACKEND`."""

from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend

from config.pii import redact


class ConsoleBackend(DjangoConsoleBackend):
    """Django's console backend (the demo) with the addresses and any phone number in the
    message masked: the console ends up in log files. Writes the decoded text, not the MIME
    encoding, so a Chinese body is readable and masked too."""

    def write_message(self, message):
        headers = [
            f"Subject: {message.subject}",
            f"From: {message.from_email}",
            f"To: {', '.join(message.to)}",
            *([f"Cc: {', '.join(message.cc)}"] if message.cc else []),
            *(f"{name}: {value}" for name, value in message.extra_headers.items()),
        ]
        self.stream.write(redact("\n".join([*headers, "", message.body])) + "\n")
        self.stream.write("-" * 79 + "\n")
