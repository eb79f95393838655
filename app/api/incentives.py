"""``GET /api/v1/distributor/tasks`` and ``GET /api/v1/distributor/leaderboards``: the
signed-in distributor's task progress and the leaderboards with their own rank. Nothing in
a request names a distributor: always the caller's own."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from spectree import Response

from app.accounts.guards import customer_id, customer_required
from app.api.blueprints import bp
from app.api.distributor import ERRORS, SECURITY, TAGS
from app.api.schemas import ErrorResponse, Query
from app.api.spec import spec
from app.core.errors import ApiError
from app.distribution.distributors import distributor_for_user
from app.distribution.models import Distributor
from app.extensions import db
from app.incentives import leaderboards, tasks
from app.incentives.invites import get_incentive_settings


def _me() -> Distributor:
    distributor = distributor_for_user(customer_id())
    if distributor is None or distributor.status not in ("active", "disabled"):
        raise ApiError(404, "not_distributor", "你还不是分销员")
    return distributor


class TaskOut(BaseModel):
    id: int
    name: str
    target_kind: str = Field(
        description="sales_fen / paid_orders / new_distributors / new_customers"
    )
    target_label: str
    target_value: int = Field(description="目标值：销售额为分，其余为个数")
    progress: int = Field(description="当前进度（同目标单位）")
    percent: int = Field(description="0-100")
    reward_fen: int
    starts_at: datetime
    ends_at: datetime
    seconds_left: int
    reward_state: str | None = Field(description="pending / settled / withdrawn；未达成为 null")
    may_join: bool


class TasksOut(BaseModel):
    tasks: list[TaskOut]
    invite_reward_fen: int = Field(description="邀请奖励金额（未开启为 0）")


@bp.get("/distributor/tasks")
@customer_required
@spec.validate(resp=Response(HTTP_200=TasksOut, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_tasks():
    """My running tasks: progress, time left and whether the reward is earned."""
    me = _me()
    settings = get_incentive_settings()
    rows = tasks.progress_for(me)
    answer = TasksOut(
        tasks=[
            TaskOut(
                id=r.task.id,
                name=r.task.name,
                target_kind=r.task.target_kind,
                target_label=tasks.TARGET_LABELS[r.task.target_kind],
                target_value=r.task.target_value,
                progress=r.value,
                percent=r.percent,
                reward_fen=r.task.reward_fen,
                starts_at=r.task.starts_at,
                ends_at=r.task.ends_at,
                seconds_left=r.seconds_left,
                reward_state=r.reward_state,
                may_join=r.may_join,
            )
            for r in rows
        ],
        invite_reward_fen=settings.invite_reward_fen if settings.invite_reward_enabled else 0,
    )
    db.session.commit()  # the settings row, if it was just created
    return answer


class BoardQuery(Query):
    board: Literal["sales", "commission", "invites"] = Field("sales")
    period: Literal["day", "week", "month"] = Field("day", description="Asia/Shanghai 时间")


class RowOut(BaseModel):
    rank: int
    name: str = Field(description="未公开昵称时只显示首字（张**）")
    avatar_url: str
    score: int = Field(description="销售额、佣金为分；邀请为人数")
    is_me: bool


class BoardOut(BaseModel):
    board: str
    period: str
    rows: list[RowOut] = Field(description="前 50 名；同分按加入先后")
    me: RowOut | None = Field(description="我的排名（未上榜为 null）")


def _row(r: leaderboards.Row) -> RowOut:
    return RowOut(rank=r.rank, name=r.name, avatar_url=r.avatar_url, score=r.score, is_me=r.is_me)


@bp.get("/distributor/leaderboards")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=BoardOut, HTTP_422=ErrorResponse, **ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def distributor_leaderboards(query: BoardQuery):
    """A leaderboard (top 50) and my own rank."""
    me = _me()
    if not get_incentive_settings().leaderboards_enabled:
        raise ApiError(404, "leaderboards_off", "排行榜暂未开放")
    data = leaderboards.read(query.board, query.period, me.id)
    db.session.commit()
    return BoardOut(
        board=data.board,
        period=data.period,
        rows=[_row(r) for r in data.rows],
        me=_row(data.me) if data.me else None,
    )
