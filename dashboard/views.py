"""The back-office dashboard page (/admin/dashboard/, staff login): filters, SVG charts, tables; `?format=csv` gives
the energy CSV with the page's session login."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from dashboard import charts
from dashboard.services import TOP_SERIES, InvalidFilter, dashboard_figures, energy_csv, filters_parse
from ocpi_core.models import Partner


def csv_response(figures: dict[str, Any]) -> HttpResponse:
    name = f"energy-{figures['filters']['from']}-{figures['filters']['to']}.csv"
    response = HttpResponse(energy_csv(figures), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _split_chart(title: str, figures: dict[str, Any], split: str) -> Any:
    series = figures[f"energy_by_{split}"]
    if len(series) > TOP_SERIES:
        head, rest = series[: TOP_SERIES - 1], series[TOP_SERIES - 1 :]
        other = [sum(values) for values in zip(*(s["days"] for s in rest), strict=True)]
        series = [*head, {"label": f"Other ({len(rest)})", "days": other}]
    return charts.stacked_bars(title, figures["days"], [(s["label"], s["days"]) for s in series], "kWh")


def dashboard_page(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Energy and network dashboard",
        "partners": Partner.objects.order_by("name").values_list("pk", "name"),
    }
    try:
        filters = filters_parse(request.GET)
    except InvalidFilter as exc:
        context["error"] = str(exc)
        filters = filters_parse({})
    started = timezone.now()
    figures = dashboard_figures(filters)
    if request.GET.get("format") == "csv" and "error" not in context:
        return csv_response(figures)
    days = figures["days"]
    per_day = figures["per_day"]
    availability = figures["availability"]
    mix = figures["energy_mix"]
    context.update(
        filters=filters,
        figures=figures,
        csv_query="&".join(f"{k}={v}" for k, v in {**filters.query(), "format": "csv"}.items()),
        chart_location=_split_chart("Energy per day by own location (kWh)", figures, "location"),
        chart_partner=_split_chart("Energy per day by partner (kWh)", figures, "partner"),
        chart_sessions=charts.stacked_bars(
            "Sessions per day", days, [("Sessions", [d["sessions"] for d in per_day])], "sessions"
        ),
        chart_avg_kwh=charts.line("Average session energy (kWh)", days, [d["avg_kwh"] or None for d in per_day], "kWh"),
        chart_avg_duration=charts.line(
            "Average session duration (minutes)",
            days,
            [d["avg_duration_minutes"] for d in per_day],
            "min",
            colour=charts.PALETTE[1],
        ),
        chart_availability=charts.stacked_bars(
            "EVSE time per status (%)",
            days,
            [(s, [d["shares"].get(s, 0) * 100 for d in availability["days"]]) for s in availability["statuses"]],
            "%",
            colours=charts.STATUS_COLOURS,
        ),
        chart_renewable=charts.share_bar(
            "Renewable share of the delivered energy",
            [("Renewable", mix["renewable_share"]), ("Other sources", 1 - mix["renewable_share"])]
            if mix["renewable_share"] is not None
            else [],
            {"Renewable": "#38a169", "Other sources": "#a0aec0"},
        ),
        server_ms=round((timezone.now() - started).total_seconds() * 1000),
    )
    return TemplateResponse(request, "dashboard/dashboard.html", context)
