"""Platform API URLs for commands, mounted at /api/commands/ (config/urls.py)."""

from django.urls import re_path

from commands.api.platform import CommandListView, CommandResultView, CommandView

urlpatterns = [
    re_path(r"^$", CommandListView.as_view(), name="platform-commands"),
    re_path(r"^(?P<pk>\d+)/?$", CommandView.as_view(), name="platform-command"),
    re_path(r"^(?P<pk>\d+)/result/?$", CommandResultView.as_view(), name="platform-command-result"),
]
