"""JSON API under /api/v1 for the mini-program client and the merchant Open API."""

from flask import Flask


def register_api(app: Flask) -> None:
    """Mount the API blueprints and the OpenAPI document. (Filled in by the API work.)"""
