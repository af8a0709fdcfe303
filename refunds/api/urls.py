from django.urls import path

from refunds.api import views

urlpatterns = [
    path("refunds/", views.RefundListView.as_view(), name="api-refunds"),
    path("refunds/<str:refund_id>/", views.RefundDetailView.as_view(), name="api-refund"),
    path("refunds/<str:refund_id>/alternative/accept/", views.RefundAcceptAlternativeView.as_view(), name="api-refund-accept"),
    path("refunds/<str:refund_id>/alternative/decline/", views.RefundDeclineAlternativeView.as_view(), name="api-refund-decline"),
    path("refunds/<str:refund_id>/withdraw/", views.RefundWithdrawView.as_view(), name="api-refund-withdraw"),
    path("refunds/<str:refund_id>/return-shipment/", views.RefundReturnShipmentView.as_view(), name="api-refund-return-shipment"),
    path("refunds/<str:refund_id>/messages/", views.RefundMessageView.as_view(), name="api-refund-messages"),
]
