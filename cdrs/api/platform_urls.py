"""Platform API URLs for CDRs, mounted at /api/cdrs/ (config/urls.py).

Object paths are served with and without a trailing slash, like the other platform API resources.
"""

from django.urls import path, re_path

from cdrs.api.platform import CdrCreditView, CdrListView, CdrPricingView, CdrReconciliationView, CdrView

urlpatterns = [
    path("", CdrListView.as_view(), name="platform-cdrs"),
    re_path(r"^(?P<cdr_pk>[0-9]+)/?$", CdrView.as_view(), name="platform-cdr"),
    re_path(r"^(?P<cdr_pk>[0-9]+)/pricing/?$", CdrPricingView.as_view(), name="platform-cdr-pricing"),
    re_path(
        r"^(?P<cdr_pk>[0-9]+)/reconciliation/?$", CdrReconciliationView.as_view(), name="platform-cdr-reconciliation"
    ),
    re_path(r"^(?P<cdr_pk>[0-9]+)/credit/?$", CdrCreditView.as_view(), name="platform-cdr-credit"),
]
