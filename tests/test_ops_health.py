"""/readyz, ``flask doctor`` against the WeChat stand-in, and a tested backup and restore
(issue 19, points 7-8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import create_engine, text

from app.extensions import db
from app.orders.models import Order
from tests.support.commissions import distributor
from tests.support.pay import fresh, new_order, prepay, sandbox_pay, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.postgresql  # migrations
def test_readyz_checks_database_redis_and_migrations(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok", "migrations": "ok"}
    with app.app_context():
        head = db.session.scalar(text("SELECT version_num FROM alembic_version"))
        db.session.execute(text("UPDATE alembic_version SET version_num = 'aaaaaaaaaaaa'"))
        db.session.commit()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"]["migrations"] == "error"
    finally:
        with app.app_context():
            db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
            db.session.commit()
    assert client.get("/readyz").status_code == 200


def test_doctor_against_the_stand_in_names_each_problem(app, live_server, monkeypatch):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["doctor"])
    out = result.output
    assert result.exit_code == 1, out
    assert "[ok] database 数据库" in out
    assert "[ok] migrations 数据库版本" in out
    assert "[ok] Redis" in out
    assert "[ok] WeChat token 公众号令牌" in out
    assert "[ok] Pay key pair 商户密钥" in out
    assert "[ok] Pay public key 微信支付公钥" in out
    assert "local WeChat stand-in's development value" in out  # settings refused
    assert "is not https" in out
    assert "notify URL 支付通知地址: http://" in out and "reachable 可访问 (http)" in out

    monkeypatch.setitem(app.config, "WECHAT_SECRET", "wrong-secret")
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "[问题 FAIL] WeChat token 公众号令牌" in result.output


def test_doctor_verifies_a_signed_answer_with_the_platform_public_key(
    app, make, live_server, sandbox, monkeypatch, tmp_path
):
    order, _sku = new_order(make)
    prepay(order)
    sandbox_pay(sandbox, order.number)
    wait_until(lambda: fresh(Order, order.id).paid_at is not None)
    runner = app.test_cli_runner()
    assert (
        "[ok] Pay public key 微信支付公钥: a signed answer verified"
        in runner.invoke(args=["doctor"]).output
    )

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    wrong = tmp_path / "not-wechat-pay.pem"
    wrong.write_bytes(stranger.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    monkeypatch.setitem(app.config, "WECHAT_PAY_PUBLIC_KEY_PATH", str(wrong))
    monkeypatch.delitem(app.extensions, "wechatpay", raising=False)  # built again, wrong key
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "[问题 FAIL] Pay public key 微信支付公钥: WeChat Pay's answer did not verify" in (
        result.output
    )


@pytest.mark.postgresql  # pg_dump and restore
@pytest.mark.skipif(os.environ.get("TEST_DB") != "postgresql", reason="pg_dump: PostgreSQL only")
def test_backup_restores_every_order_and_ledger_balance(app, make, database_url, tmp_path):
    for price in (1990, 2500, 12000):
        new_order(make, price_fen=price)
    seller = distributor(make)
    make.ledger_entry(seller.id, 700)
    make.ledger_entry(seller.id, 300, state="pending")
    make.ledger_entry(seller.id, -200)
    uploads = tmp_path / "uploads"
    (uploads / "products").mkdir(parents=True)
    (uploads / "products" / "a.jpg").write_bytes(b"\xff\xd8 image bytes")

    env = {**os.environ, "DATABASE_URL": database_url, "UPLOAD_DIR": str(uploads)}
    script = [sys.executable, str(ROOT / "scripts" / "backup.py")]
    made = subprocess.run(
        [*script, "dump", "--out", str(tmp_path / "backups")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    folder = Path(made.stdout.strip())
    assert (folder / "database.dump").stat().st_size > 0

    parts = urlsplit(database_url.replace("+psycopg", ""))
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "shop_restore_test"')
        conn.execute('CREATE DATABASE "shop_restore_test"')
    restored_url = urlsplit(database_url)._replace(path="/shop_restore_test").geturl()
    restored_uploads = tmp_path / "restored-uploads"
    env = {**env, "DATABASE_URL": restored_url, "UPLOAD_DIR": str(restored_uploads)}
    back = subprocess.run(
        [*script, "restore", str(folder)], env=env, capture_output=True, text=True, check=False
    )
    assert back.returncode == 0, back.stderr

    orders = "SELECT id, number, status, total_fen FROM orders ORDER BY id"
    balances = (
        "SELECT distributor_id, state, SUM(amount_fen) FROM ledger_entries "
        "GROUP BY distributor_id, state ORDER BY 1, 2"
    )
    engine = create_engine(restored_url)
    try:
        with engine.connect() as conn:
            restored = (conn.execute(text(orders)).all(), conn.execute(text(balances)).all())
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "shop_restore_test"')
    with app.app_context():
        original = (
            db.session.execute(text(orders)).all(),
            db.session.execute(text(balances)).all(),
        )
    assert len(original[0]) == 3 and original[1]
    assert restored == original
    assert (restored_uploads / "products" / "a.jpg").read_bytes() == b"\xff\xd8 image bytes"
