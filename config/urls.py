from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health.views import health
from orders.api.views import not_found as api_not_found
from refunds.admin.search import search_view

urlpatterns = [
    path("health/", health, name="health"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/account/", include("accounts.urls")),
    # The staff search, linked from every staff page's header (refunds.admin.search).
    path("admin/search/", admin.site.admin_view(search_view), name="staff_search"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file of its own (`?script`), so the
    # page runs under the Content-Security-Policy's `script-src 'self'` with no inline script.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs/swagger_ui.html"),
        name="api-docs",
    ),
    path("api/v1/", include("orders.api.urls")),
    path("api/v1/", include("refunds.api.urls")),
    path("api/v1/<path:rest>", api_not_found),
]
