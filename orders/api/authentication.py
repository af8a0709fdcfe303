"""Channel authentication: `Authorization: Bearer <key>`; only a hash of the key is stored.

A channel has up to two keys (`ChannelKey`), so it can rotate without a gap. Failed
attempts are counted per client IP (`FailedAuthLimit`): past the limit, 429.
"""

from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, permissions

from orders import services
from orders.api.throttling import FailedAuthLimit
from orders.models import Channel


class ChannelKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        limit = FailedAuthLimit()
        limit.check(request)
        try:
            if len(header) != 2:
                raise exceptions.AuthenticationFailed(_("Send 'Authorization: Bearer <key>'."))
            try:
                key = header[1].decode()
            except UnicodeError:
                raise exceptions.AuthenticationFailed(_("The key is not valid.")) from None
            found = services.channel_key_use(key=key)
            if found is None:
                raise exceptions.AuthenticationFailed(_("The key is not valid."))
            if found.is_expired():
                raise exceptions.AuthenticationFailed(_("The key has expired. Use the channel's new key."))
        except exceptions.AuthenticationFailed:
            limit.failed(request)
            raise
        return (None, found.channel)

    def authenticate_header(self, request):
        return self.keyword


class IsChannel(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, Channel)
