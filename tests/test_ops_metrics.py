"""/metrics, request ids and JSON log lines, through the real doors (issue 19, points 5-6).

Counters are cumulative in this process, so each test compares before and after. The
multiprocess tests never assume which process took which request: they start their own
processes and check the sum.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import requests
from rq import Retry

from app.core.observe import JsonFormatter, log_context, mask_openid
from app.core.time import utcnow
from app.extensions import db
from app.wechat.models import OutboundMessage
from jobs.queues import get_queue
from jobs.worker import run_worker
from tests.support.commissions import distributor
from tests.support.ops import always_fails, total, value
from tests.support.pay import new_order, notice_for, post_notice, prepay, transaction_resource
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def _scrape(client, **kwargs) -> str:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_metrics_answer_allowed_addresses_and_the_token_only(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-metrics-token")
    outsider = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=outsider).status_code == 403
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", environ_base=outsider, headers=wrong).status_code == 403
    good = {"Authorization": "Bearer s3cret-metrics-token"}
    text = _scrape(client, environ_base=outsider, headers=good)
    assert "shop_rq_queue_depth" in text
    monkeypatch.setitem(app.config, "METRICS_ALLOW", "203.0.113.0/24")
    assert client.get("/metrics", environ_base=outsider).status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback no longer listed


def test_request_latency_is_counted_by_route_not_path(client):
    before = _scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get("/products/99999999")
    after = _scrape(client)
    name = "shop_request_duration_seconds_count"
    labels = {"route": "/healthz", "method": "GET", "status": "200"}
    assert value(after, name, **labels) - value(before, name, **labels) == 3
    assert "/products/99999999" not in after


def test_pay_notices_and_pay_calls_are_counted_by_result(app, make, live_server, sandbox, client):
    before = _scrape(client)
    order, _sku = new_order(make)
    prepay(order)  # a real WeChat Pay call through the client
    headers, body = notice_for(sandbox, transaction_resource(sandbox, order))
    assert post_notice(live_server.url, headers, body).status_code == 204
    assert post_notice(live_server.url, headers, body).status_code == 204  # WeChat retries
    assert (
        post_notice(live_server.url, {**headers, "Wechatpay-Signature": "x"}, body).status_code
        == 401
    )
    after = _scrape(client)
    for result, count in (("paid", 1), ("duplicate", 1), ("rejected", 1)):
        name = "shop_pay_notices_total"
        assert value(after, name, result=result) - value(before, name, result=result) == count
    calls = "shop_wechat_api_calls_total"
    assert (
        value(after, calls, api="pay", result="ok") - value(before, calls, api="pay", result="ok")
        >= 1
    )


def test_levels_and_job_outcomes_are_read_at_scrape_time(app, make, client):
    seller = distributor(make)
    make.ledger_entry(
        seller.id,
        500,
        state="pending",
        settle_after=utcnow() - timedelta(hours=2),
    )
    db.session.add(
        OutboundMessage(
            dedupe_key="backlog-1", kind="order_paid", openid="o_backlog_1", status="pending"
        )
    )
    db.session.commit()
    queue = get_queue("low")
    queue.enqueue(always_fails, retry=Retry(max=1))  # fails, is retried, fails for good
    text = _scrape(client)
    assert value(text, "shop_rq_queue_depth", queue="low") == 1
    assert value(text, "shop_outbox_backlog") == 1
    assert value(text, "shop_settlement_lag_seconds") >= 2 * 3600 - 60
    run_worker(app, burst=True)
    text = _scrape(client)
    assert value(text, "shop_rq_queue_depth", queue="low") == 0
    func = "tests.support.ops.always_fails"
    assert value(text, "shop_rq_job_outcomes_total", outcome="retried", func=func) == 1
    assert value(text, "shop_rq_job_outcomes_total", outcome="failed", func=func) == 1


def test_request_id_is_sent_back_and_carried_into_enqueued_jobs(app, make, live_server, sandbox):
    order, _sku = new_order(make)
    prepay(order)
    headers, body = notice_for(sandbox, transaction_resource(sandbox, order))
    given = "req-0123456789abcdef"
    response = post_notice(live_server.url, {**headers, "X-Request-ID": given}, body)
    assert response.status_code == 204
    assert response.headers["X-Request-ID"] == given
    jobs = get_queue("default").get_jobs()
    assert jobs and {job.meta.get("request_id") for job in jobs} == {given}
    made_up = requests.get(
        f"{live_server.url}/healthz", headers={"X-Request-ID": "bad id!"}, timeout=5
    )
    assert made_up.headers["X-Request-ID"] != "bad id!"
    assert len(made_up.headers["X-Request-ID"]) == 32


def test_json_log_line_per_request_with_order_number_and_no_query(
    app, make, client, sandbox, monkeypatch, caplog
):
    monkeypatch.setitem(app.config, "LOG_FORMAT", "json")
    order, _sku = new_order(make)
    prepay(order)
    headers, body = notice_for(sandbox, transaction_resource(sandbox, order))
    with caplog.at_level(logging.INFO, logger="shop.request"):
        client.post("/pay/notify?signature=SECRETSIG", data=body, headers=headers)
        client.get("/healthz", headers={"X-Request-ID": "trace-abcdef012345"})
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "shop.request"
    ]
    notice, health = lines[-2], lines[-1]
    assert notice["event"] == "request" and notice["route"] == "/pay/notify"
    assert notice["status"] == 204
    assert notice["out_trade_no"] == order.number == notice["order_number"]
    assert len(notice["request_id"]) == 32
    assert health["request_id"] == "trace-abcdef012345"
    assert "SECRETSIG" not in json.dumps(lines)


def test_json_lines_mask_openids():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hi", (), None)
    record.fields = {"openid": "oAbCdEfGhIjKlMnOpQrStUvWx"}
    line = json.loads(JsonFormatter().format(record))
    assert line["openid"] == "oAbC***UvWx" == mask_openid("oAbCdEfGhIjKlMnOpQrStUvWx")


def test_job_line_carries_the_request_id(app, caplog, monkeypatch):
    with app.test_request_context(), log_context(request_id="from-the-request-01"):
        get_queue("low").enqueue(always_fails)
    with caplog.at_level(logging.INFO, logger="shop.job"):
        run_worker(app, burst=True)
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "shop.job"]
    assert lines[-1]["event"] == "job"
    assert lines[-1]["status"] == "failed"
    assert lines[-1]["request_id"] == "from-the-request-01"


_COUNT = (
    "import sys; from app.core.metrics import count_pay_notice\n"
    "for _ in range(int(sys.argv[1])): count_pay_notice('paid')\n"
)


def test_counts_of_separate_processes_are_summed(app, client, tmp_path, monkeypatch):
    """Two processes of our own, one folder: the scrape sums them (no gunicorn spread)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in (3, 4):
        subprocess.run([sys.executable, "-c", _COUNT, str(count)], cwd=ROOT, env=env, check=True)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = _scrape(client)
    assert value(text, "shop_pay_notices_total", result="paid") == 7


def test_gunicorn_conf_empties_the_folder_and_the_total_is_every_request(tmp_path, redis_url):
    """gunicorn with 2 workers: only the total is asserted, never which worker took what."""
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale from an earlier run")
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "REDIS_URL": redis_url,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESSLOG": str(tmp_path / "access.log"),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"]
    errors = tmp_path / "gunicorn.err"
    with errors.open("wb") as stderr:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stderr, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                requests.get(f"{base}/readyz", timeout=10)
                break
            except requests.RequestException:
                assert server.poll() is None, errors.read_text()
                assert time.time() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert not (folder / "counter_999999.db").exists()
        for _ in range(10):
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        text = requests.get(f"{base}/metrics", timeout=10).text
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert total(text, "shop_request_duration_seconds_count", route="/healthz") == 10


def test_grafana_dashboard_reads_metrics_the_app_exposes(client):
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    names = {n for e in exprs for n in re.findall(r"\bshop_[a-z_]+", e)}
    assert len(names) >= 9
    text = _scrape(client)
    for name in names:
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert re.search(rf"^# TYPE {base}(_total)? ", text, re.MULTILINE), name
