"""The API's Swagger UI renders in a real browser with every request kept on this server:
its files come from drf-spectacular-sidecar, so /api/docs/ works without the internet."""

import pytest

from tests.e2e.conftest import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def test_swagger_ui_renders_the_operations_without_leaving_the_server(page, live_server, screenshot_dir):
    offsite = []

    def only_this_server(route):
        if route.request.url.startswith(live_server.url):
            return route.continue_()
        offsite.append(route.request.url)
        return route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{live_server.url}/api/docs/")

    create = page.locator('.opblock-post .opblock-summary-path[data-path="/api/v1/refunds/"]')
    create.wait_for()
    assert page.locator(".opblock").count() >= 10  # orders, messages, refunds and their actions, tracking
    shot(page, "api-docs")
    assert offsite == []
