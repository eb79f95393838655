"""WeChat's requests to us (message server). (Later issues.)"""

from flask import Blueprint

bp = Blueprint("wechat", __name__)
