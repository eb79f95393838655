"""Customer sign-in with WeChat web OAuth: /login, its callback, /logout."""

from flask import Blueprint

bp = Blueprint("accounts", __name__)


@bp.get("/login")
def login():
    """Start WeChat OAuth and come back to ``next`` signed in. (Filled in by the OAuth work.)"""
    return "TODO", 501
