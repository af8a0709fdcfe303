"""A staff member's own security pages, in the admin's frame: two-factor enrolment and
verification, recovery codes, and their sessions. Each makes one call into accounts.services."""

from base64 import b32encode

import django_otp
import segno
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import selectors, services, sessions
from accounts.forms import CodeForm
from config.errors import DomainError


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("admin:index")


def _render(request, template, title, status=200, sidebar=True, **context):
    context = {**admin.site.each_context(request), "title": title, **context}
    if not sidebar:
        # Enrolment and the code page: the sidebar's links would lead back here until it is done.
        context["is_nav_sidebar_enabled"] = False
    return TemplateResponse(request, template, context, status=status)


def two_factor(request):
    """What the staff member has set up, and the buttons to change it."""
    state = selectors.two_factor_state(request.user)
    return _render(
        request,
        "accounts/two_factor.html",
        gettext("Two-factor authentication"),
        state=state,
        verified=request.user.is_verified(),
        codes_left=selectors.recovery_codes_left(request.user) if state.enrolled else 0,
    )


def enrol(request):
    """Scan the QR code (or type the key), answer with a code: the authenticator is set up,
    this session counts as verified and the recovery codes are shown once."""
    user = request.user
    state = selectors.two_factor_state(user)
    if state.enrolled and not user.is_verified():
        # Replacing an authenticator takes the current one first, or a stolen password would do.
        return redirect(f"{reverse('accounts:verify')}?next={reverse('accounts:enrol')}")
    device = services.authenticator_pending(user=user)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            confirmed = services.authenticator_confirm(user=user, token=form.cleaned_data["code"])
            if confirmed is not None:
                device, codes = confirmed
                django_otp.login(request, device)
                return _render(
                    request,
                    "accounts/recovery_codes.html",
                    gettext("Your recovery codes"),
                    codes=codes,
                    next=_next(request),
                    just_enrolled=True,
                )
            form.add_error("code", gettext("That code is not right. Check the time on your phone and try the newest code."))
        status = 400
    secret = b32encode(device.bin_key).decode()
    return _render(
        request,
        "accounts/enrol.html",
        gettext("Set up two-factor authentication"),
        status=status,
        sidebar=False,
        form=form,
        required=state.required,
        # segno's SVG of our own otpauth:// URL (no user input in it), big enough to scan.
        qr_svg=mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=5, border=2)),  # noqa: S308
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        next=_next(request),
    )


def verify(request):
    """The second step of signing in: a code from the authenticator, or a recovery code."""
    user = request.user
    if user.is_verified():
        return HttpResponseRedirect(_next(request))
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            code = form.cleaned_data["code"]
            # A code goes to the device it looks like, so a recovery code doesn't count as a
            # failed app code in the app's throttle (and the other way round).
            kind = TOTPDevice if code.isdigit() else StaticDevice
            device = next(
                (
                    d
                    for d in django_otp.devices_for_user(user)
                    if isinstance(d, kind) and django_otp.verify_token(user, d.persistent_id, code)
                ),
                None,
            )
            if device is not None:
                django_otp.login(request, device)
                if isinstance(device, StaticDevice):
                    left = selectors.recovery_codes_left(user)
                    messages.warning(
                        request,
                        ngettext(
                            "You signed in with a recovery code. %(n)d code is left.",
                            "You signed in with a recovery code. %(n)d codes are left.",
                            left,
                        )
                        % {"n": left},
                    )
                return HttpResponseRedirect(_next(request))
            form.add_error("code", gettext("That code is not right, or was used already. Wait for a new code and try again."))
        status = 400
    return _render(
        request,
        "accounts/verify.html",
        gettext("Two-factor authentication"),
        status=status,
        sidebar=False,
        form=form,
        next=_next(request),
    )


def _verified_or_back(request):
    if not request.user.is_verified():
        messages.error(request, gettext("Enter a code from your authenticator first."))
        return redirect(f"{reverse('accounts:verify')}?next={reverse('accounts:two_factor')}")
    return None


@require_POST
def recovery_codes(request):
    """New recovery codes (the old ones stop working), shown once."""
    refused = _verified_or_back(request)
    if refused:
        return refused
    codes = services.recovery_codes_renew(user=request.user)
    return _render(
        request, "accounts/recovery_codes.html", gettext("Your recovery codes"), codes=codes, next=reverse("accounts:two_factor")
    )


@require_POST
def disable(request):
    refused = _verified_or_back(request)
    if refused:
        return refused
    try:
        services.two_factor_disable(user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _render(
            request,
            "accounts/two_factor.html",
            gettext("Two-factor authentication"),
            status=403,
            state=selectors.two_factor_state(request.user),
            verified=True,
            codes_left=selectors.recovery_codes_left(request.user),
        )
    request.session.pop(django_otp.DEVICE_ID_SESSION_KEY, None)
    messages.success(request, gettext("Two-factor authentication is off."))
    return redirect("accounts:two_factor")


def session_list(request):
    """The staff member's live sessions; POST ends one (or all the others)."""
    current = request.session.session_key
    if request.method == "POST":
        if "end_others" in request.POST:
            n = services.sessions_end(user=request.user, except_key=current)
        else:
            handle = request.POST.get("handle", "")
            if handle and handle == request.session.get(sessions.HANDLE):
                logout(request)
                return redirect("admin:login")
            n = services.sessions_end(user=request.user, handles=[handle])
        messages.success(request, ngettext("%(n)d session ended.", "%(n)d sessions ended.", n) % {"n": n})
        return redirect("accounts:sessions")
    return _render(
        request,
        "accounts/sessions.html",
        gettext("Your sessions"),
        sessions=list(selectors.sessions_of(request.user)),
        idle_hours=settings.SESSION_COOKIE_AGE / 3600,
        current_key=current,
    )


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out sign-in (AXES_LOCKOUT_CALLABLE): 429, in the reader's language."""
    cool_off = get_cool_off(request)
    return TemplateResponse(
        request,
        "accounts/locked_out.html",
        {
            **admin.site.each_context(request),
            "failure_limit": get_failure_limit(request, credentials),
            "cooloff_minutes": int(cool_off.total_seconds() // 60) if cool_off else None,
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    ).render()
