"""CDRs URLs, mounted under /ocpi/2.2.1/ (see ocpi_core.registry)."""

from django.urls import re_path

from cdrs.api.views import CdrReceiverListView, CdrReceiverObjectView, CdrSenderListView

urlpatterns = [
    re_path(r"^cpo/cdrs/?$", CdrSenderListView.as_view(), name="cpo-cdrs"),
    re_path(r"^emsp/cdrs/?$", CdrReceiverListView.as_view(), name="emsp-cdrs"),
    re_path(r"^emsp/cdrs/(?P<cdr_pk>[^/]+)/?$", CdrReceiverObjectView.as_view(), name="emsp-cdr"),
]
