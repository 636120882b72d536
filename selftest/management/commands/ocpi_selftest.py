"""`manage.py ocpi_selftest --partner NAME`: run the conformance self-test now and print the report (JSON).

Exit code 0 when every check passed (warnings and skips allowed), 1 otherwise; progress goes to the logs (stderr).
"""

import json
from typing import Any

from django.core.management.base import CommandError

from ocpi_core.management.base import JsonCommand
from selftest.models import SelfTestRun
from selftest.services import selftest_execute, selftest_report, selftest_start


class Command(JsonCommand):
    help = "Run read-only OCPI 2.2.1 conformance checks against a registered partner and print the report."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--partner", required=True, help="Partner name")

    def handle(self, *args: Any, **options: Any) -> None:
        report = self.run(**options)
        self.stdout.write(json.dumps(report, indent=2, default=str))
        if not report["ok"]:
            raise CommandError(
                f"self-test {report['status']}: {report['counts']['fail']} check(s) failed", returncode=1
            )

    def run(self, **options: Any) -> dict[str, Any]:
        partner = self.partner_by_name(options["partner"])
        run = selftest_execute(run=selftest_start(partner=partner))
        return selftest_report(SelfTestRun.objects.select_related("partner").get(pk=run.pk))
