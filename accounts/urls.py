from django.contrib import admin
from django.urls import path

from accounts import views

app_name = "accounts"

# Under /admin/account/ and behind the admin's own login check (admin_view).
urlpatterns = [
    path("two-factor/", admin.site.admin_view(views.two_factor), name="two_factor"),
    path("two-factor/enrol/", admin.site.admin_view(views.enrol), name="enrol"),
    path("two-factor/verify/", admin.site.admin_view(views.verify), name="verify"),
    path("two-factor/recovery-codes/", admin.site.admin_view(views.recovery_codes), name="recovery_codes"),
    path("two-factor/disable/", admin.site.admin_view(views.disable), name="disable"),
    path("sessions/", admin.site.admin_view(views.session_list), name="sessions"),
]
