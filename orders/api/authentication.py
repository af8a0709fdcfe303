"""Channel authentication: `Authorization: Bearer <key>`; only a hash of the key is stored."""

from rest_framework import authentication, exceptions, permissions

from orders.models import Channel


class ChannelKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Bearer <key>'.")
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The key is not valid.") from None
        channel = Channel.objects.filter(key_hash=Channel.hash_key(key), is_active=True).first()
        if channel is None:
            raise exceptions.AuthenticationFailed("The key is not valid.")
        return (None, channel)

    def authenticate_header(self, request):
        return self.keyword


class IsChannel(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, Channel)
