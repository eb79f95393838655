"""Profile the paid-order pipeline in one process: seed the bench's backlog, then follow
it up in batches (``follow_up_orders``, one transaction each) under cProfile.

    .venv/bin/python bench/profile_follow_up.py --orders 300 --batch 20
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.commissions import make_app, seed_backlog  # noqa: E402
from bench.postgres import start_postgres  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", help="write the raw profile here")
    parser.add_argument(
        "--statements", action="store_true", help="count SQL statements by kind, no cProfile"
    )
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "test")
    with tempfile.TemporaryDirectory(prefix="profile-follow-up-") as folder:
        tmp = Path(folder)
        app = make_app(start_postgres(tmp), tmp)
        _expected, backlog = seed_backlog(app, args.orders)
        from app.earnings.on_paid import follow_up_orders
        from app.extensions import db

        with app.app_context():
            if args.statements:
                return count_statements(app, backlog, args.batch, args.top)
            profile = cProfile.Profile()
            started, cpu = time.perf_counter(), time.process_time()
            profile.enable()
            for at in range(0, len(backlog), args.batch):
                follow_up_orders(backlog[at : at + args.batch])
                db.session.commit()
            profile.disable()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            # The CPU of this process (profiler included; PostgreSQL's not) depends far
            # less on the machine's load than the wall time does.
            print(
                f"{len(backlog)} orders in {elapsed:.2f} s: {len(backlog) / elapsed:.0f} orders/s;"
                f" {1000 * cpu / len(backlog):.1f} ms of this process's CPU per order"
            )
            db.session.remove()
            db.engine.dispose()
        stats = pstats.Stats(profile)
        if args.out:
            stats.dump_stats(args.out)
        stats.sort_stats("cumulative").print_stats(args.top)
    return 0


def count_statements(app, backlog: list[int], batch: int, top: int) -> int:
    """Follow the backlog up in batches, counting statements by their first words."""
    from collections import Counter

    from sqlalchemy import event

    from app.earnings.on_paid import follow_up_orders
    from app.extensions import db

    seen: Counter = Counter()

    def count(conn, cursor, statement, *args):
        seen[" ".join(statement.split())[:90]] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    started = time.perf_counter()
    for at in range(0, len(backlog), batch):
        follow_up_orders(backlog[at : at + batch])
        db.session.commit()
    elapsed = time.perf_counter() - started
    event.remove(db.engine, "before_cursor_execute", count)
    total = sum(seen.values())
    print(
        f"{len(backlog)} orders in {elapsed:.2f} s ({len(backlog) / elapsed:.0f} orders/s), "
        f"{total} statements, {total / len(backlog):.1f} per order"
    )
    for text, n in seen.most_common(top):
        print(f"{n / len(backlog):7.2f}  {text}")
    db.session.remove()
    db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
