"""Platform API URLs for CDRs, mounted at /api/cdrs/ (config/urls.py)."""

from django.urls import path

from cdrs.api.platform import CdrCreditView, CdrListView, CdrPricingView, CdrReconciliationView, CdrView

urlpatterns = [
    path("", CdrListView.as_view(), name="platform-cdrs"),
    path("<int:cdr_pk>", CdrView.as_view(), name="platform-cdr"),
    path("<int:cdr_pk>/pricing", CdrPricingView.as_view(), name="platform-cdr-pricing"),
    path("<int:cdr_pk>/reconciliation", CdrReconciliationView.as_view(), name="platform-cdr-reconciliation"),
    path("<int:cdr_pk>/credit", CdrCreditView.as_view(), name="platform-cdr-credit"),
]
