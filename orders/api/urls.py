from django.urls import path

from orders.api import schema, views  # noqa: F401  (schema registers the auth scheme)

urlpatterns = [
    path("orders/<str:order_number>/", views.OrderView.as_view(), name="api-order"),
    path("orders/<str:order_number>/messages/", views.OrderMessagesView.as_view(), name="api-order-messages"),
    path("tracking-events/", views.TrackingEventView.as_view(), name="api-tracking-events"),
]
