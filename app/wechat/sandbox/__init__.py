"""The local WeChat stand-in: a separate small Flask app with WeChat's real paths."""

from flask import Flask


def create_sandbox_app(config: dict | None = None) -> Flask:
    """Build the stand-in app. (Filled in by the WeChat work.)"""
    app = Flask(__name__)
    app.config.update(config or {})
    return app
