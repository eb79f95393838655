"""The application factory and configuration."""

import pytest

from app import create_app
from config import config_for


def test_test_app_uses_given_database(app, database_url):
    assert app.testing
    assert app.config["SQLALCHEMY_DATABASE_URI"] == database_url


def test_production_refuses_to_start_without_secrets(monkeypatch):
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "WECHAT_APPID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production")


def test_development_defaults_point_at_the_stand_in(monkeypatch):
    for name in ("WECHAT_API_BASE", "WECHAT_APPID", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = config_for("development")
    assert settings["WECHAT_API_BASE"].startswith("http://127.0.0.1")
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")


def test_unknown_environment_is_refused():
    with pytest.raises(RuntimeError):
        config_for("staging")


def test_healthz_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_unknown_page_is_a_chinese_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
