"""Two middlewares, after django-otp's OTPMiddleware (settings.MIDDLEWARE says the order)."""

from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse

from accounts import selectors, sessions

# What a signed-in staff member who still owes a second factor may open: signing in and out,
# the admin's JavaScript catalogue, and the two pages that settle it.
_OPEN_VIEWS = {"admin:login", "admin:logout", "admin:jsi18n", "accounts:verify", "accounts:enrol"}


class SessionActivityMiddleware:
    """Keeps a signed-in session's "last seen" (and so its idle timeout) moving: see `sessions.touch`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # Before SessionMiddleware's response half, which saves a session that changed.
        sessions.touch(request)
        return response


class TwoFactorMiddleware:
    """No admin page works for a staff member who owes a second factor: one who has enrolled
    is sent to the verify page, one whose role requires it and who has none to enrolment.

    Per request this costs nothing beyond django-otp's own device lookup for a verified
    session, and one query (`selectors.two_factor_state`) for a session not verified.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or not request.path.startswith(reverse("admin:index")):
            return None
        if match.view_name in _OPEN_VIEWS:
            return None
        user = request.user
        if not user.is_authenticated or not user.is_staff or user.is_verified():
            return None
        state = selectors.two_factor_state(user)
        if state.enrolled:
            target = "accounts:verify"
        elif state.required:
            target = "accounts:enrol"
        else:
            return None
        return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
