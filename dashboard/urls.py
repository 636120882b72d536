"""Dashboard URLs, mounted at the root by one line in config/urls.py (before the admin, whose catch-all would take
/admin/dashboard/): the back-office page, the platform API and its CSV."""

from django.contrib import admin
from django.urls import path

from dashboard.api import DashboardEnergyCsvView, DashboardView
from dashboard.views import dashboard_page

urlpatterns = [
    path("admin/dashboard/", admin.site.admin_view(dashboard_page), name="dashboard"),
    path("api/dashboard/", DashboardView.as_view(), name="platform-dashboard"),
    path("api/dashboard/energy.csv", DashboardEnergyCsvView.as_view(), name="platform-dashboard-csv"),
]
