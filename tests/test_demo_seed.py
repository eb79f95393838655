"""``flask seed-demo`` through the CLI: a realistic demo shop, loaded once however often run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app import create_app
from app.accounts.models import Staff
from app.catalog.models import Category, Product, ProductImage, Sku
from app.extensions import db

pytestmark = pytest.mark.postgresql  # once-only seeding

ROOT = Path(__file__).resolve().parent.parent


def _counts() -> dict[str, int]:
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Category, Product, Sku, ProductImage, Staff)
    }


def test_seed_demo_twice(app, runner):
    from demo.owner import DEMO_OWNER

    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert DEMO_OWNER[0] in first.output and DEMO_OWNER[1] in first.output

    with app.app_context():
        counts = _counts()
        assert counts["Product"] >= 12
        assert counts["Category"] >= 3
        products = db.session.scalars(select(Product)).all()
        multi = [p for p in products if len(p.skus) > 1]
        assert len(multi) >= 3
        assert any(len(p.spec_names) == 2 for p in multi)  # 颜色 x 尺码
        assert any(not p.on_shelf for p in products)
        assert any(p.featured for p in products)
        assert any(s.stock == 0 for p in products for s in p.skus)
        assert all(p.title and p.description and p.category for p in products)
        codes = [s.code for p in products for s in p.skus]
        assert all(codes) and len(codes) == len(set(codes))
        for p in multi:  # each SKU has its own price, original price and stock
            for sku in p.skus:
                assert sku.price_fen > 0 and sku.original_price_fen >= sku.price_fen
                assert set(sku.specs) == set(p.spec_names)

        upload_dir = Path(app.config["UPLOAD_DIR"])
        for image in db.session.scalars(select(ProductImage)):
            path = upload_dir / image.filename
            assert path.exists(), image.filename
            assert path.stat().st_size < 60 * 1024
            with Image.open(path) as picture:
                assert picture.format == "JPEG"
                assert picture.size == (750, 750) == (image.width, image.height)
                picture.verify()
        assert all(p.images for p in products)

        owner = db.session.scalar(select(Staff).where(Staff.username == DEMO_OWNER[0]))
        assert owner is not None and owner.role == "owner"
        assert owner.check_password(DEMO_OWNER[1])
        # The merchant changes the password; a re-seed must not undo it.
        owner.set_password("changed-by-merchant")
        db.session.commit()

    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    with app.app_context():
        assert _counts() == counts
        owner = db.session.scalar(select(Staff).where(Staff.username == DEMO_OWNER[0]))
        assert owner.check_password("changed-by-merchant")


def test_seed_redraws_missing_images(app, runner):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    with app.app_context():
        image = db.session.scalars(select(ProductImage)).first()
        path = Path(app.config["UPLOAD_DIR"]) / image.filename
    path.unlink()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    assert path.exists()


def test_demo_images_are_served(app, runner, client):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    with app.app_context():
        product = db.session.scalars(select(Product).where(Product.on_shelf.is_(True))).first()
        filename = product.images[0].filename
        product_id = product.id
    with client.get(f"/media/{filename}") as response:  # closes the streamed file
        assert response.status_code == 200
        assert response.mimetype == "image/jpeg"
    page = client.get(f"/product/{product_id}").get_data(as_text=True)
    assert f"/media/{filename}" in page


def test_demo_switches_notifications_on_for_the_stand_in_only(app, runner, app_ctx):
    from app.wechat.notify import KINDS, notification_settings

    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    rows = notification_settings()
    assert all(rows[k].enabled and rows[k].template_id == f"DEMO_{k.upper()}" for k in KINDS)


def test_demo_never_touches_notifications_for_real_wechat(app, app_ctx, monkeypatch):
    from app.wechat.notify import KINDS, notification_settings
    from demo.wechat import seed_demo_notifications

    monkeypatch.setitem(app.config, "WECHAT_API_BASE", "https://api.weixin.qq.com")
    assert "real WeChat" in seed_demo_notifications()
    rows = notification_settings()
    assert not any(rows[k].enabled for k in KINDS)


def test_demo_has_one_running_task(app, runner, app_ctx):
    from sqlalchemy import func, select

    from app.core.time import utcnow
    from app.extensions import db
    from app.incentives.models import Task

    for _ in range(2):
        result = runner.invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count(Task.id))) == 1
    task = db.session.scalar(select(Task))
    assert task.starts_at <= utcnow() < task.ends_at


def test_the_shop_alone_has_no_demo_command(app):
    """``app/`` never imports ``demo/``: the factory's app has no ``seed-demo``; wsgi.py adds it."""
    plain = create_app({"ENV_NAME": "test", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert "seed-demo" not in plain.cli.list_commands(None)
    assert "WECHAT_SANDBOX_EXTRA_FANS" not in plain.config


def test_wsgi_entry_point_offers_seed_demo(tmp_path):
    """``flask --app wsgi`` (what ``make dev`` runs) lists ``seed-demo``."""
    env = dict(os.environ, APP_ENV="development", DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}")
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "seed-demo" in result.stdout and "Load the demo shop" in result.stdout
