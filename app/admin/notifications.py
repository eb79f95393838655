"""公众号 pages: the custom menu and template-message settings (owner), the send log (staff).

Settings: for every notification kind (app/wechat/notify.py ``KINDS``) a template id and an
on/off switch, plus the staff openids that hear of paid orders. The log lists recent
outbound messages with their status, attempts and WeChat's last error.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from app.admin import bp
from app.admin.decorators import owner_required, staff_required
from app.admin.people import people_by_openid
from app.core.audit import audited, rows
from app.extensions import db
from app.wechat.menu import MenuError, menu_definition, publish_menu
from app.wechat.models import NotificationSetting, OutboundMessage
from app.wechat.notify import (
    KINDS,
    notification_settings,
    parse_openids,
    save_setting,
    set_staff_openids,
    staff_openids,
)

LOG_LIMIT = 100
STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败"}


def _render(error: str | None = None, status: int = 200, form: dict | None = None):
    from flask import current_app

    settings = notification_settings()
    db.session.commit()  # notification_settings may have created the rows
    return (
        render_template(
            "admin/notifications.html",
            kinds=KINDS,
            settings=settings,
            staff_openids="\n".join(staff_openids()),
            menu=menu_definition(current_app.config["PUBLIC_BASE_URL"]),
            form=form,
            error=error,
        ),
        status,
    )


@bp.get("/wechat")
@owner_required
def wechat_settings():
    """The menu to publish and the template-message settings."""
    return _render()


@bp.post("/wechat")
@owner_required
@audited("notification_settings.update", rows(NotificationSetting, "notification_settings"))
def wechat_settings_save():
    """Save every kind's template id and switch and the staff openids, all or nothing."""
    form = request.form
    try:
        for kind in KINDS:
            save_setting(
                kind,
                form.get(f"template_id_{kind}", "")[:200],
                form.get(f"enabled_{kind}") == "1",
            )
        set_staff_openids(parse_openids(form.get("staff_openids", "")[:5000]))
    except ValueError as err:
        db.session.rollback()
        return _render(str(err), 422, form=form)
    db.session.commit()
    flash("公众号通知设置已保存", "success")
    return redirect(url_for("admin.wechat_settings"))


@bp.post("/wechat/menu")
@owner_required
def wechat_menu_publish():
    """Publish the custom menu to WeChat; WeChat's refusal is shown in Chinese."""
    try:
        publish_menu()
    except MenuError as err:
        flash(f"菜单发布失败：{err.message}", "error")
    else:
        flash("菜单已发布到公众号（微信客户端可能需要几分钟才显示新菜单）", "success")
    return redirect(url_for("admin.wechat_settings"))


@bp.get("/wechat/messages")
@staff_required
def wechat_messages():
    """The latest outbound messages, optionally only one status."""
    wanted = request.args.get("status", "")
    query = select(OutboundMessage).order_by(OutboundMessage.id.desc()).limit(LOG_LIMIT)
    if wanted in STATUS_LABELS:
        query = query.where(OutboundMessage.status == wanted)
    else:
        wanted = ""
    counts = dict(
        db.session.execute(
            select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
        ).all()
    )
    rows = db.session.scalars(query).all()
    return render_template(
        "admin/notifications_log.html",
        rows=rows,
        recipients=people_by_openid({m.openid for m in rows}),
        kinds=KINDS,
        status_labels=STATUS_LABELS,
        counts=counts,
        wanted=wanted,
    )
