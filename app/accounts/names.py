"""How a customer is named wherever the shop shows one to someone else.

WeChat's snsapi_base sign-in gives no nickname, so many customers have none. Calling all
of them "微信用户" makes a list of them impossible to tell apart; the openid must never
show (it identifies the fan to anyone holding the official account's credentials). So a
customer without a nickname is "微信用户" followed by the last 4 digits of their user id
(zero-padded): stable, short, and different for neighbours in any list.
"""

from __future__ import annotations

ANONYMOUS = "微信用户"


def display_name(nickname: str | None, user_id: int | None) -> str:
    """The nickname, or ``微信用户`` + the last 4 digits of ``user_id`` (``微信用户0427``)."""
    name = (nickname or "").strip()
    if name:
        return name
    if user_id is None:
        return ANONYMOUS
    return f"{ANONYMOUS}{str(user_id).zfill(4)[-4:]}"
