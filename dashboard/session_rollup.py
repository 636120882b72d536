"""The daily session rollup (dashboard.models.SessionDay), kept incrementally.

A valid session (not INVALID) counts in three rows, one per grain, on the UTC day it started: with its location and
token party (FULL), with its location (LOCATION), with its token party or CPO partner (PARTY). A save or delete of a
Session through the ORM (post_save / post_delete, in the transaction of the write) takes the session out of the rows
of the state the write replaces (the row as loaded from the database: Session._loaded_values) and adds it to the rows
of its new state, as ONE upsert of the differences (INSERT ... ON CONFLICT DO UPDATE SET sessions = sessions +
excluded.sessions, ...: portable between PostgreSQL and SQLite). A write that changes nothing the rollup counts
(total_cost, charging periods, preferences) writes nothing; one that moves the session out of a row (another day,
location or party, INVALID, deleted) also deletes the rows left empty (a second statement).

Adding differences, rather than counting a row's sessions again from the Session table, keeps concurrent writers
exact: two transactions counting the same row under READ COMMITTED would each miss the other's uncommitted session
and the last upsert would win, whereas increments commute and ON CONFLICT applies each to the row's latest version.
The rows of one write are upserted in key order, so two writes never wait for each other's rows crosswise; a
write holds its rows until it commits, so writers of sessions of the same day and location or party queue there.

Writes that bypass the ORM's signals (COPY, bulk_create, QuerySet.update(), raw SQL) must be followed by
session_rollup_rebuild(); sessions_app's services write sessions through Model.save() only.
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import reduce
from operator import or_
from typing import Any

from django.db import connections, router, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Func,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dashboard.models import KEY, SessionDay
from sessions_app.models import Session, SessionStatus

FULL, LOCATION, PARTY = SessionDay.Grain.FULL.value, SessionDay.Grain.LOCATION.value, SessionDay.Grain.PARTY.value
AMOUNTS = ("sessions", "kwh", "ended", "duration_us")
# the Session columns the rollup reads (attnames)
FIELDS = (
    "partner_id",
    "country_code",
    "party_id",
    "location_id",
    "token_country_code",
    "token_party_id",
    "start_date_time",
    "end_date_time",
    "kwh",
    "status",
)
_FIELD_NAMES = frozenset(FIELDS) | {"partner"}
_KWH_PLACES = Decimal("0.000001")  # Session.kwh's scale: what the database keeps of a value
# How a value with more decimals is rounded to that scale where it is stored: by PostgreSQL's numeric, half away from
# zero; on SQLite by Django as it writes it (django.db.backends.utils.format_number), half to even.
_KWH_ROUNDING = {"sqlite": ROUND_HALF_EVEN}
_MICROSECOND = timedelta(microseconds=1)
_UNKNOWN = object()

Key = tuple[str, date, int, str, str, str, str, str]


def _moment(value: Any) -> Any:
    """A start/end as an aware datetime, as the database will hold it (None stays None)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if isinstance(value, datetime) and timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value


def _kwh(value: Any, vendor: str) -> Decimal:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return number.quantize(_KWH_PLACES, rounding=_KWH_ROUNDING.get(vendor, ROUND_HALF_UP))


def session_rows(values: Mapping[str, Any] | None, vendor: str) -> list[tuple[Key, tuple[int, Decimal, int, int]]]:
    """The rollup rows a session (its FIELDS by attname) counts in, with what it adds to each: (sessions, kWh as the
    database of `vendor` keeps it, ended, duration in microseconds). None or an INVALID session: none."""
    if values is None or values["status"] == SessionStatus.INVALID:
        return []
    start, end = _moment(values["start_date_time"]), _moment(values["end_date_time"])
    day = start.astimezone(UTC).date()
    partner_pk = values["partner_id"] or 0
    token = ("", "") if partner_pk else (values["token_country_code"], values["token_party_id"])
    location = (values["country_code"], values["party_id"], values["location_id"])
    amounts = (
        (1, _kwh(values["kwh"], vendor), 0, 0)
        if end is None
        else (1, _kwh(values["kwh"], vendor), 1, (end - start) // _MICROSECOND)
    )
    return [
        ((FULL, day, partner_pk, *location, *token), amounts),
        ((LOCATION, day, partner_pk, *location, "", ""), amounts),
        ((PARTY, day, partner_pk, "", "", "", *token), amounts),
    ]


def session_rollup_apply(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, using: str) -> None:
    """Move a session from the rows of `before` to those of `after` (FIELDS by attname; None: not in the database)."""
    deltas: dict[Key, list[Any]] = {}
    changes: tuple[tuple[int, Mapping[str, Any] | None], ...] = ((-1, before), (1, after))
    vendor = connections[using].vendor
    for sign, values in changes:
        for key, (sessions, kwh, ended, duration_us) in session_rows(values, vendor):
            delta = deltas.setdefault(key, [0, Decimal(0), 0, 0])
            delta[0] += sign * sessions
            delta[1] += sign * kwh
            delta[2] += sign * ended
            delta[3] += sign * duration_us
    rows = sorted((key, delta) for key, delta in deltas.items() if any(delta))
    if not rows:
        return
    connection = connections[using]
    ops = connection.ops
    table = ops.quote_name(SessionDay._meta.db_table)
    keys = ", ".join(KEY)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({keys}, {', '.join(AMOUNTS)}) VALUES "  # noqa: S608 (our table and columns)
            + ", ".join(["(" + ", ".join(["%s"] * (len(KEY) + len(AMOUNTS))) + ")"] * len(rows))
            + f" ON CONFLICT ({keys}) DO UPDATE SET "
            + ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in AMOUNTS),
            [
                value
                for (grain, day, *key), (sessions, kwh, ended, duration_us) in rows
                for value in (
                    grain,
                    ops.adapt_datefield_value(day),
                    *key,
                    sessions,
                    ops.adapt_decimalfield_value(kwh),
                    ended,
                    duration_us,
                )
            ],
        )
    emptied = [key for key, delta in rows if delta[0] < 0]
    if emptied:
        SessionDay.objects.using(using).filter(
            reduce(or_, (Q(**dict(zip(KEY, key, strict=True))) for key in emptied)), sessions__lte=0
        ).delete()


def _touches_rollup(update_fields: Any) -> bool:
    return update_fields is None or not _FIELD_NAMES.isdisjoint(update_fields)


@receiver(pre_save, sender=Session, dispatch_uid="dashboard_session_rollup_before")
def _before_save(sender: Any, instance: Session, using: str, update_fields: Any = None, **kwargs: Any) -> None:
    """A session saved with a primary key but not loaded from the database with the rollup's fields (built by hand,
    or loaded with only()): read the state the write replaces (one statement)."""
    loaded = instance.__dict__.get("_loaded_values") or {}
    if instance.pk is None or not _touches_rollup(update_fields) or all(name in loaded for name in FIELDS):
        return
    instance.__dict__["_rollup_before"] = (
        sender._default_manager.using(using).filter(pk=instance.pk).values(*FIELDS).first()
    )


@receiver(post_save, sender=Session, dispatch_uid="dashboard_session_rollup")
def _after_save(
    sender: Any, instance: Session, created: bool, using: str, update_fields: Any = None, **kwargs: Any
) -> None:
    before = instance.__dict__.pop("_rollup_before", _UNKNOWN)
    if not _touches_rollup(update_fields):
        return
    if created:
        before = None
    elif before is _UNKNOWN:
        before = {name: instance._loaded_values[name] for name in FIELDS}
    written = None if update_fields is None or before is None else set(update_fields)  # only these columns
    after = {
        name: getattr(instance, name)
        if written is None or name in written or name.removesuffix("_id") in written
        else before[name]
        for name in FIELDS
    }
    session_rollup_apply(before, after, using)


@receiver(post_delete, sender=Session, dispatch_uid="dashboard_session_rollup_delete")
def _after_delete(sender: Any, instance: Session, using: str, **kwargs: Any) -> None:
    loaded = instance.__dict__.get("_loaded_values") or {}
    session_rollup_apply({name: loaded.get(name, getattr(instance, name)) for name in FIELDS}, None, using)


class _Microseconds(Func):
    """A duration as whole microseconds: PostgreSQL's interval through its epoch; SQLite's durations (and Django's
    other backends without a native duration type) are microseconds already."""

    template = "%(expressions)s"
    output_field = BigIntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint", **extra
        )


def session_rollup_rebuild(*, models: tuple[Any, Any] | None = None) -> int:
    """Recompute the whole rollup from the Session table, in the database (three INSERT ... SELECT: the FULL grain
    from the sessions, the other two from it); returns the rows written. On PostgreSQL the rollup is locked against
    writers meanwhile (a session write waits for the rebuild, then adds its change to the rebuilt rows).
    `models`: the (Session, SessionDay) of a migration's state."""
    session_model, day_model = models or (Session, SessionDay)
    using = router.db_for_write(day_model)
    connection = connections[using]
    table = connection.ops.quote_name(day_model._meta.db_table)
    columns = ", ".join((*KEY, *AMOUNTS))
    full = (
        session_model._default_manager.using(using)
        .exclude(status=SessionStatus.INVALID)
        .annotate(
            r_day=TruncDate("start_date_time"),
            r_partner=Coalesce("partner_id", Value(0), output_field=BigIntegerField()),
            r_country=F("country_code"),
            r_party=F("party_id"),
            r_location=F("location_id"),
            r_token_country=Case(
                When(partner__isnull=True, then=F("token_country_code")), default=Value(""), output_field=CharField()
            ),
            r_token_party=Case(
                When(partner__isnull=True, then=F("token_party_id")), default=Value(""), output_field=CharField()
            ),
        )
        .values("r_day", "r_partner", "r_country", "r_party", "r_location", "r_token_country", "r_token_party")
        .annotate(
            r_sessions=Count("pk"),
            r_kwh=Sum("kwh"),
            r_ended=Count("end_date_time"),
            r_duration=Coalesce(
                Sum(_Microseconds(ExpressionWrapper(F("end_date_time") - F("start_date_time"), DurationField()))),
                Value(0),
                output_field=BigIntegerField(),
            ),
        )
        .order_by()
    )
    select, params = full.query.sql_with_params()
    names = (
        *("r_day", "r_partner", "r_country", "r_party", "r_location", "r_token_country", "r_token_party"),
        *("r_sessions", "r_kwh", "r_ended", "r_duration"),
    )
    outer = ", ".join(connection.ops.quote_name(name) for name in names)
    written = 0
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (our table)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT %s, {outer} FROM ({select}) sessions_by_key",  # noqa: S608 (ORM's SQL)
            [FULL, *params],
        )
        written += cursor.rowcount
        for grain, kept, blank in (
            (LOCATION, "country_code, party_id, location_id", "'', ''"),
            (PARTY, "token_country_code, token_party_id", "'', '', ''"),
        ):
            select_keys = f"{kept}, {blank}" if grain == LOCATION else f"{blank}, {kept}"
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT %s, day, partner_pk, {select_keys}, "  # noqa: S608
                f"SUM(sessions), SUM(kwh), SUM(ended), SUM(duration_us) FROM {table} WHERE grain = %s "
                f"GROUP BY day, partner_pk, {kept}",
                [grain, FULL],
            )
            written += cursor.rowcount
    return written
