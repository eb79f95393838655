"""What ``/metrics`` reads at scrape time: levels (queue depth, outbox backlog, settlement
lag) and the job counts every worker keeps in Redis (app/core/metrics.py)."""

from __future__ import annotations

import logging
from datetime import UTC

from flask import current_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import func, select

from app.core.metrics import job_counts
from app.core.redis import get_redis
from app.core.time import utcnow
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.wechat.models import OutboundMessage

log = logging.getLogger(__name__)


def _aware(moment):
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return moment


class ShopGauges:
    """A prometheus_client collector over the app's Redis and database, read per scrape."""

    def collect(self):
        up = GaugeMetricFamily(
            "shop_metrics_source_up", "1 when the source answered this scrape.", labels=["source"]
        )
        try:
            yield from self._redis_metrics()
            up.add_metric(["redis"], 1)
        except Exception:  # a scrape must answer even when a source is down
            log.warning("metrics: Redis did not answer", exc_info=True)
            up.add_metric(["redis"], 0)
        try:
            yield from self._database_metrics()
            up.add_metric(["database"], 1)
        except Exception:
            db.session.rollback()
            log.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric(["database"], 0)
        yield up

    def _redis_metrics(self):
        connection = get_redis()
        depth = GaugeMetricFamily(
            "shop_rq_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"]
        )
        scheduled = GaugeMetricFamily(
            "shop_rq_scheduled_jobs", "Jobs scheduled for later, per queue.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "shop_rq_failed_registry", "Jobs kept in RQ's failed registry.", labels=["queue"]
        )
        for name in current_app.config.get("RQ_QUEUES", ("default", "high", "low")):
            queue = Queue(name, connection=connection)
            depth.add_metric([name], queue.count)
            scheduled.add_metric([name], ScheduledJobRegistry(queue=queue).count)
            failed.add_metric([name], FailedJobRegistry(queue=queue).count)
        jobs = CounterMetricFamily(
            "shop_rq_job_outcomes",
            "Jobs that failed for good or were retried, by job function (every worker's).",
            labels=["outcome", "func"],
        )
        for (outcome, func_name), count in sorted(job_counts(connection).items()):
            jobs.add_metric([outcome, func_name], count)
        yield from (depth, scheduled, failed, jobs)

    def _database_metrics(self):
        now = utcnow()
        pending, oldest = db.session.execute(
            select(func.count(), func.min(OutboundMessage.created_at)).where(
                OutboundMessage.status == "pending"
            )
        ).one()
        backlog = GaugeMetricFamily(
            "shop_outbox_backlog", "WeChat template messages not sent yet (outbox rows pending)."
        )
        backlog.add_metric([], pending)
        yield backlog
        age = GaugeMetricFamily(
            "shop_outbox_oldest_seconds", "Age of the oldest unsent outbox row (0: none)."
        )
        oldest = _aware(oldest)
        age.add_metric([], max((now - oldest).total_seconds(), 0) if oldest else 0)
        yield age
        due = db.session.scalar(
            select(func.min(LedgerEntry.settle_after)).where(
                LedgerEntry.state == "pending", LedgerEntry.settle_after <= now
            )
        )
        due = _aware(due)
        lag = GaugeMetricFamily(
            "shop_settlement_lag_seconds",
            "How long the oldest pending entry has been due for settlement (0: nothing due).",
        )
        lag.add_metric([], max((now - due).total_seconds(), 0) if due else 0)
        yield lag
        db.session.rollback()
