"""`manage.py ocpi_bootstrap`: what the one-command start needs after migrating: demo data, an admin login, and a
fresh token A for a first partner. Prints JSON."""

import io
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from ocpi_core.management.base import JsonCommand
from ocpi_core.registry import versions_url
from ocpi_core.services import partner_invite


class Command(JsonCommand):
    help = "Load demo data, ensure an admin login and invite a first partner (development start)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--admin-user", default="admin")
        parser.add_argument("--partner-name", default="first-partner")

    def run(self, **options: Any) -> dict[str, Any]:
        call_command("ocpi_demo", stdout=io.StringIO())
        user_model = get_user_model()
        username = options["admin_user"]
        password_file = Path(settings.VAR_DIR) / "admin-password.txt"
        user = user_model.objects.filter(username=username).first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            if user is None:
                user = user_model.objects.create_superuser(username=username, email="", password=password)
            else:
                user.set_password(password)
                user.save()
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password)
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        partner, token = partner_invite(name=options["partner_name"])
        return {
            "admin_url": settings.OCPI_BASE_URL + "/admin/",
            "admin_user": username,
            "admin_password": password,
            "versions_url": versions_url(),
            "partner": partner.name,
            "token_a": token,
        }
