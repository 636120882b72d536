"""Push scenario (d), the driver: N status changes of distinct own EVSEs through `locations.services.evse_status_set`
(what the platform API's hot path calls), then wait (bounded) until the outbox has no open delivery.

Writes --out JSON: every change (partner path suffix, commit time, new status, last_updated sent), how long the
service calls took, and the outbox rows the run created by status. Run by bench/run.py with production settings,
while Celery workers and the partner servers (bench/partners.py) run.
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

import django  # noqa: E402

django.setup()

from django.db.models import Count  # noqa: E402

from locations.models import Evse  # noqa: E402
from locations.services import Key, evse_status_set  # noqa: E402
from ocpi_core.models import Delivery, DeliveryAttempt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.0, help="changes per second (0: as fast as possible)")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for the outbox to drain (s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    # distinct own EVSEs (one per location), so no change supersedes another: each must reach every partner
    own = Evse.objects.filter(location__partner__isnull=True, location__ocpi_id__startswith="LOC", position=0)
    last = own.order_by("-location_id").values_list("location_id", flat=True).first() or 0
    first = own.order_by("location_id").values_list("location_id", flat=True).first() or 0
    picked = rng.sample(range(first, last + 1), min(args.changes, last - first + 1))
    evses = list(
        own.filter(location_id__in=picked)
        .select_related("location")
        .only("uid", "status", "location__country_code", "location__party_id", "location__ocpi_id")
    )
    rng.shuffle(evses)
    before = Delivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    changes = []
    call_ms = []
    started = time.time()
    for index, evse in enumerate(evses[: args.changes]):
        if args.rate > 0:
            delay = started + index / args.rate - time.time()
            if delay > 0:
                time.sleep(delay)
        location = evse.location
        key = Key(location.country_code, location.party_id, location.ocpi_id, evse.uid)
        status = "CHARGING" if evse.status == "AVAILABLE" else "AVAILABLE"
        t0 = time.perf_counter()
        evse_status_set(key=key, status=status)
        call_ms.append((time.perf_counter() - t0) * 1000)
        changes.append([f"{key.country_code}/{key.party_id}/{key.location_id}/{key.evse_uid}", time.time(), status])
    changed_for = time.time() - started

    deadline = time.time() + args.timeout
    open_rows = -1
    while time.time() < deadline:
        open_rows = Delivery.objects.filter(pk__gt=before, status__in=Delivery.OPEN).count()
        if open_rows == 0:
            break
        time.sleep(0.2)
    drained_after = time.time() - started

    rows = Delivery.objects.filter(pk__gt=before)
    by_status = {row["status"]: row["n"] for row in rows.values("status").annotate(n=Count("pk"))}
    attempts = DeliveryAttempt.objects.filter(delivery__pk__gt=before).count()
    call_ms.sort()
    summary = {
        "changes": len(changes),
        "rate": args.rate,
        "changes_seconds": round(changed_for, 3),
        "drain_seconds": round(drained_after, 3),
        "open_at_end": open_rows,
        "deliveries": by_status,
        "attempts": attempts,
        "service_call_ms": {
            "p50": round(call_ms[len(call_ms) // 2], 2) if call_ms else None,
            "p95": round(call_ms[int(len(call_ms) * 0.95)], 2) if call_ms else None,
            "mean": round(sum(call_ms) / len(call_ms), 2) if call_ms else None,
        },
    }
    args.out.write_bytes(orjson.dumps({"summary": summary, "changes": changes}))
    print(orjson.dumps(summary).decode())


if __name__ == "__main__":
    main()
