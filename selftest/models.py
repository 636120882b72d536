"""Models of the partner self-test app: one run of read-only conformance checks against a partner, and its checks."""

from django.db import models

from ocpi_core.models import Partner


class SelfTestRun(models.Model):
    """One conformance self-test of a partner's OCPI 2.2.1 interfaces: progress while it runs, the verdict after."""

    class Status(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        PASSED = "PASSED", "Passed"
        FAILED = "FAILED", "Failed (at least one check failed)"
        ERROR = "ERROR", "Error (the self-test could not run)"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="selftest_runs")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.CharField(max_length=200, blank=True, help_text="What the self-test is doing now")
    requests = models.PositiveIntegerField("requests made", default=0)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    warnings = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, help_text="Why the run ended in ERROR")

    class Meta:
        ordering = ("-started_at", "-pk")
        verbose_name = "self-test run"

    def __str__(self) -> str:
        return f"Self-test of {self.partner} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status != self.Status.RUNNING


class SelfTestCheck(models.Model):
    """The outcome of one conformance rule in a run, with the evidence an operator needs to show the partner."""

    class Outcome(models.TextChoices):
        PASS = "PASS", "Pass"
        FAIL = "FAIL", "Fail"
        WARN = "WARN", "Warning"
        SKIP = "SKIP", "Skipped"

    run = models.ForeignKey(SelfTestRun, on_delete=models.CASCADE, related_name="checks")
    rule = models.CharField(max_length=64, db_index=True, help_text="Rule id, e.g. locations.pagination.headers")
    title = models.CharField(max_length=200)
    outcome = models.CharField(max_length=4, choices=Outcome.choices, db_index=True)
    url = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    ocpi_status_code = models.PositiveSmallIntegerField("OCPI status", null=True, blank=True)
    field_path = models.CharField(max_length=200, blank=True)
    evidence = models.TextField(blank=True, help_text="What was seen: message, headers or a body excerpt")

    class Meta:
        ordering = ("run", "pk")
        verbose_name = "self-test check"

    def __str__(self) -> str:
        return f"{self.rule} {self.outcome}"
