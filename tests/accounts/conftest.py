import pytest
from django_otp.oath import TOTP


def totp_code(device, *, ahead: int = 0) -> str:
    """The code an authenticator app shows now for `device` (`ahead` steps later: django-otp
    accepts one step either way, and refuses a step it has already seen)."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead)
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def sign_in(client):
    """POST the admin login form as a browser from `ip` would."""

    def post(username, password, *, ip="203.0.113.10", c=None, **extra):
        return (c or client).post(
            "/admin/login/?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=ip, **extra
        )

    return post
