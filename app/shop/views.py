"""H5 shop pages. (Filled in by the shop work.)"""

from flask import Blueprint

bp = Blueprint("shop", __name__)


@bp.get("/")
def home():
    return "TODO"
