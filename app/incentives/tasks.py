"""Tasks (任务奖励): a target in a time window, a fixed reward paid once when reached.

Progress (every figure one aggregate query, counting only paid, unrefunded activity whose
payment falls inside ``[starts_at, ends_at)``):

- ``sales_fen``: Σ (goods paid − refunded) of orders whose level-1 attribution is the
  distributor (the seller, or the buyer with self-purchase on), paid inside the window;
- ``paid_orders``: how many of those orders are not fully refunded;
- ``new_distributors``: direct sub-distributors (parent = the distributor) who joined
  inside the window and paid for an order inside it that is not fully refunded;
- ``new_customers``: customers bound to the distributor inside the window (their current
  binding) who paid for an order inside it that is not fully refunded.

Evaluation runs on the events that can change progress: the paid-order follow-up job,
a completed refund (in the refund's transaction) and the periodic incentives job
(jobs/incentives.py), which also covers what no event reports (a task created after the
sales). When progress reaches the target, one ``task_reward`` entry is written, pending,
keyed ``task:<task>:<distributor>`` and pointing at its task by ``task_id``
(app/ledger/entries.py). When a refund takes
progress back below the target before the reward settles, the reward is reversed; if the
distributor reaches the target again inside the window, a new attempt is keyed
``task:<task>:<distributor>:<n>`` (n = 1 + rewards reversed so far), so at most one reward
per task and distributor is ever alive, whatever runs at once.

Settlement rule: a reward settles when the target is still met counting only
*settlement-eligible* activity: orders ``settlement_eligible`` allows (app/ledger/
settlement.py: completed, past the hold, no open refund), the same rule as commissions.
So the reward waits for the same hold as the orders that reached it, and a refund inside
that hold can still reverse it.
Eligibility (grades) is checked when the reward is written; staff may deactivate a task
to stop new rewards, while pending ones still settle or reverse by the rules above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, bindparam, case, exists, func, select, union

from app.core.batch import memo
from app.core.time import utcnow
from app.distribution.models import Binding, Distributor, Grade, OrderAttribution
from app.extensions import db
from app.incentives.models import TASK_TARGETS, Task
from app.ledger.entries import reverse_reward, settle_reward, write_reward
from app.ledger.kinds import PENDING, REVERSED, TASK_REWARD
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settlement_eligible, settlement_hold_days
from app.orders.models import Order

TARGET_LABELS = {
    "sales_fen": "推广销售额",
    "paid_orders": "推广订单数",
    "new_distributors": "邀请新分销员（已下单）",
    "new_customers": "新增客户（已下单）",
}


class TaskError(ValueError):
    """A task that cannot be saved, with a Chinese message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- staff: create and edit ------------------------------------------------------------------


@dataclass(frozen=True)
class TaskInput:
    """What staff type for a task (already parsed; money in fen)."""

    name: str
    target_kind: str
    target_value: int
    reward_fen: int
    starts_at: datetime
    ends_at: datetime
    grade_ids: list[int]
    active: bool = True


TARGET_MAX = 2**31 - 1  # the column is an integer: ¥21,474,836.47 or that many people


def validate(data: TaskInput) -> TaskInput:
    """Check a task's fields; raise TaskError in Chinese."""
    name = data.name.strip()
    if not name or len(name) > 64:
        raise TaskError("请填写任务名称（64 字以内）")
    if data.target_kind not in TASK_TARGETS:
        raise TaskError("请选择任务目标")
    if data.target_value <= 0:
        raise TaskError("目标值必须大于 0")
    if data.target_value > TARGET_MAX:
        raise TaskError("目标值过大")
    if data.reward_fen <= 0:
        raise TaskError("奖励金额必须大于 0")
    if data.reward_fen > 100_000_00:
        raise TaskError("奖励金额过大")
    if data.ends_at <= data.starts_at:
        raise TaskError("结束时间必须晚于开始时间")
    grade_ids = sorted(set(data.grade_ids))
    if grade_ids:
        known = set(db.session.scalars(select(Grade.id).where(Grade.id.in_(grade_ids))))
        if known != set(grade_ids):
            raise TaskError("所选等级不存在")
    return TaskInput(
        name,
        data.target_kind,
        data.target_value,
        data.reward_fen,
        data.starts_at,
        data.ends_at,
        grade_ids,
        data.active,
    )


def save_task(data: TaskInput, task: Task | None = None) -> Task:
    """Create or update a task after validating it (flushes)."""
    data = validate(data)
    task = task or Task()
    task.name = data.name
    task.target_kind = data.target_kind
    task.target_value = data.target_value
    task.reward_fen = data.reward_fen
    task.starts_at = data.starts_at
    task.ends_at = data.ends_at
    task.grade_ids = data.grade_ids
    task.active = data.active
    db.session.add(task)
    db.session.flush()
    return task


# --- progress -------------------------------------------------------------------------------


def progress_value(
    task: Task,
    distributor_id: int,
    *,
    settled_at: datetime | None = None,
    hold_days: int | None = None,
) -> int:
    """The distributor's progress on ``task`` (fen or a count); one query.

    With ``settled_at`` only orders ``settlement_eligible`` at that moment count (the
    settlement rule in the module docstring).
    """
    start, end = task.starts_at, task.ends_at
    in_window = and_(Order.paid_at.is_not(None), Order.paid_at >= start, Order.paid_at < end)
    conditions = [in_window]
    if settled_at is not None:
        conditions.append(settlement_eligible(settled_at, hold_days))
    kind = task.target_kind
    if kind in ("sales_fen", "paid_orders"):
        figure = (
            func.sum(Order.items_fen - Order.refunded_fen)
            if kind == "sales_fen"
            else func.sum(case((Order.items_fen > Order.refunded_fen, 1), else_=0))
        )
        query = (
            select(func.coalesce(figure, 0))
            .select_from(OrderAttribution)
            .join(Order, Order.id == OrderAttribution.order_id)
            .where(
                OrderAttribution.distributor_id == distributor_id,
                OrderAttribution.level == 1,
                *conditions,
            )
        )
        return int(db.session.scalar(query) or 0)
    conditions.append(Order.items_fen > Order.refunded_fen)
    if kind == "new_distributors":
        bought = exists().where(Order.user_id == Distributor.user_id, *conditions)
        query = (
            select(func.count())
            .select_from(Distributor)
            .where(
                Distributor.parent_id == distributor_id,
                Distributor.created_at >= start,
                Distributor.created_at < end,
                bought,
            )
        )
    elif kind == "new_customers":
        bought = exists().where(Order.user_id == Binding.user_id, *conditions)
        query = (
            select(func.count())
            .select_from(Binding)
            .where(
                Binding.distributor_id == distributor_id,
                Binding.bound_at >= start,
                Binding.bound_at < end,
                bought,
            )
        )
    else:  # pragma: no cover - the column is validated on save
        raise TaskError("未知的任务目标")
    return int(db.session.scalar(query) or 0)


def may_join(task: Task, distributor: Distributor) -> bool:
    """Whether the distributor may take part (active; in one of the task's grades, if any)."""
    if distributor.status != "active":
        return False
    return not task.grade_ids or distributor.grade_id in task.grade_ids


def _rewards(task_id: int, distributor_id: int) -> list[LedgerEntry]:
    return list(
        db.session.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.kind == TASK_REWARD,
                LedgerEntry.distributor_id == distributor_id,
                LedgerEntry.task_id == task_id,
            )
            .order_by(LedgerEntry.id)
            .execution_options(populate_existing=True)
        )
    )


def reward_key(task_id: int, distributor_id: int, attempt: int = 1) -> str:
    """The once-only key of a task reward (attempt n > 1 after n - 1 reversals)."""
    base = f"task:{task_id}:{distributor_id}"
    return base if attempt == 1 else f"{base}:{attempt}"


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation did: the progress, and the entries it wrote (ids)."""

    value: int
    written: int | None = None
    reversed: int | None = None


def evaluate(
    task: Task,
    distributor: Distributor,
    *,
    refund_id: int | None = None,
    now: datetime | None = None,
) -> Evaluation:
    """Write the reward if the target is reached, reverse a pending one if it is not any
    more (flushes). Safe to run any number of times, concurrently."""
    now = now or utcnow()
    value = progress_value(task, distributor.id)
    rewards = _rewards(task.id, distributor.id)
    alive = [r for r in rewards if r.state != REVERSED]
    if alive:
        reward = alive[-1]
        if value < task.target_value and reward.state == PENDING:
            why = f"退款后任务「{task.name}」进度 {value}/{task.target_value}，未达成"
            return Evaluation(value, reversed=reverse_reward(reward, why, refund_id, now))
        return Evaluation(value)
    if value < task.target_value or not task.active or not may_join(task, distributor):
        return Evaluation(value)
    attempt = len(rewards) + 1
    written = write_reward(
        distributor_id=distributor.id,
        kind=TASK_REWARD,
        amount_fen=task.reward_fen,
        reward_key=reward_key(task.id, distributor.id, attempt),
        rule_source=f"task:{task.id}",
        task_id=task.id,
        note=f"任务「{task.name}」达成：{value}/{task.target_value}",
        now=now,
    )
    return Evaluation(value, written=written)


_ALL_TASKS = select(Task).order_by(Task.id)


def tasks_covering(moment: datetime) -> list[Task]:
    """Tasks whose window contains ``moment`` (active or not: pending rewards may need
    reversing), in id order.

    A shop has a handful of tasks: they are read whole (once per batch of follow-ups,
    ``app/core/batch.py``) and the window checked here; a naive ``moment`` is UTC.
    """
    at = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    every = memo("tasks", lambda: list(db.session.scalars(_ALL_TASKS)))
    return [task for task in every if task.starts_at <= at < task.ends_at]


def evaluate_for(
    distributor_ids: set[int], moment: datetime, *, refund_id: int | None = None
) -> list[int]:
    """Evaluate every task covering ``moment`` for the given distributors (flushes);
    returns the ids of reward and reversal entries written."""
    written: list[int] = []
    tasks = tasks_covering(moment)
    if not tasks or not distributor_ids:
        return written
    # After a payment's evaluation, evaluating the same pair again in the same batch would
    # change nothing until its progress or eligibility moves (``forget_evaluations``):
    # inside a batch of follow-ups progress only grows, and the pair was just brought to
    # where its progress says. A refund's evaluation is never remembered.
    stable = memo(_STABLE, set) if refund_id is None else set()
    due = sorted(i for i in distributor_ids if any((t.id, i) not in stable for t in tasks))
    if not due:
        return written
    people = db.session.scalars(select(Distributor).where(Distributor.id.in_(due)))
    for distributor in people:
        for task in tasks:
            if (task.id, distributor.id) in stable:
                continue
            done = evaluate(task, distributor, refund_id=refund_id)
            written += [i for i in (done.written, done.reversed) if i is not None]
            if refund_id is None:
                stable.add((task.id, distributor.id))
    db.session.flush()
    return written


_STABLE = "tasks:evaluated"  # (task id, distributor id) pairs evaluated in this batch


def forget_evaluations(distributor_ids: Iterable[int] | None = None) -> None:
    """Inside a batch of follow-ups: these distributors' progress or eligibility may have
    moved (someone joined under them, a grade went up, an attribution or binding was
    written), so their next evaluation runs again; None: everyone's. Outside a batch
    nothing is remembered."""
    stable = memo(_STABLE, set)
    if distributor_ids is None:
        stable.clear()
        return
    ids = set(distributor_ids)
    stable.difference_update([pair for pair in stable if pair[1] in ids])


def candidates(task: Task) -> set[int]:
    """Everyone who may have progress on ``task`` or holds a reward of it (4 queries)."""
    start, end = task.starts_at, task.ends_at
    paid = and_(Order.paid_at >= start, Order.paid_at < end)
    sellers = (
        select(OrderAttribution.distributor_id)
        .join(Order, Order.id == OrderAttribution.order_id)
        .where(OrderAttribution.level == 1, paid)
    )
    inviters = select(Distributor.parent_id).where(
        Distributor.parent_id.is_not(None),
        Distributor.created_at >= start,
        Distributor.created_at < end,
    )
    binders = select(Binding.distributor_id).where(
        Binding.bound_at >= start, Binding.bound_at < end
    )
    holders = select(LedgerEntry.distributor_id).where(
        LedgerEntry.kind == TASK_REWARD, LedgerEntry.task_id == task.id
    )
    ids: set[int] = set()
    for query in (sellers, inviters, binders, holders):
        ids.update(i for i in db.session.scalars(query.distinct()) if i is not None)
    return ids


def evaluate_task(task: Task) -> list[int]:
    """Evaluate ``task`` for everyone who may have progress (the periodic job; flushes)."""
    written: list[int] = []
    ids = candidates(task)
    for distributor in db.session.scalars(select(Distributor).where(Distributor.id.in_(ids))):
        done = evaluate(task, distributor)
        written += [i for i in (done.written, done.reversed) if i is not None]
    db.session.flush()
    return written


def open_tasks(now: datetime, grace_days: int = 60) -> list[Task]:
    """Tasks still running, or ended recently enough to have rewards to settle or reverse."""
    return list(
        db.session.scalars(
            select(Task)
            .where(Task.starts_at <= now, Task.ends_at > now - timedelta(days=grace_days))
            .order_by(Task.id)
        )
    )


def settle_task_rewards(now: datetime | None = None) -> int:
    """Settle pending task rewards whose target is met by ``settlement_eligible`` activity
    alone (flushes); return how many settled."""
    now = now or utcnow()
    hold_days = settlement_hold_days()
    settled = 0
    pending = db.session.execute(
        select(LedgerEntry, Task)
        .join(Task, Task.id == LedgerEntry.task_id)
        .where(LedgerEntry.kind == TASK_REWARD, LedgerEntry.state == PENDING)
    ).all()
    for entry, task in pending:
        value = progress_value(task, entry.distributor_id, settled_at=now, hold_days=hold_days)
        if value >= task.target_value:
            settled += settle_reward(entry.id, now)
    db.session.flush()
    return settled


# --- the distributor's view ------------------------------------------------------------------


@dataclass(frozen=True)
class TaskProgress:
    """One task as the distributor sees it."""

    task: Task
    value: int
    percent: int  # 0..100, for the progress bar
    seconds_left: int  # 0 once ended
    reward_state: str | None  # pending / settled / withdrawn / None (not reached)
    may_join: bool

    @property
    def reached(self) -> bool:
        return self.reward_state is not None


def progress_for(distributor: Distributor, now: datetime | None = None) -> list[TaskProgress]:
    """Active tasks running now (or ended within a week) with the distributor's progress."""
    now = now or utcnow()
    tasks = db.session.scalars(
        select(Task)
        .where(
            Task.active.is_(True),
            Task.starts_at <= now,
            Task.ends_at > now - timedelta(days=7),
        )
        .order_by(Task.ends_at, Task.id)
    ).all()
    result = []
    for task in tasks:
        joinable = may_join(task, distributor)
        if not joinable and task.grade_ids:
            continue  # a task for other grades is not shown
        value = progress_value(task, distributor.id)
        states = [r.state for r in _rewards(task.id, distributor.id) if r.state != REVERSED]
        result.append(
            TaskProgress(
                task=task,
                value=value,
                percent=min(100, value * 100 // task.target_value),
                seconds_left=max(0, int((task.ends_at - now).total_seconds())),
                reward_state=states[-1] if states else None,
                may_join=joinable,
            )
        )
    return result


# One query, built once: every paid order asks it.
_AFFECTED_BY_ORDER = union(
    select(OrderAttribution.distributor_id).where(
        OrderAttribution.order_id == bindparam("order_id"), OrderAttribution.level == 1
    ),
    select(Distributor.parent_id).where(Distributor.user_id == bindparam("user_id")),
    select(Binding.distributor_id).where(Binding.user_id == bindparam("user_id")),
)


_AFFECTED = "tasks:affected_by_order"  # batch memo: {order id: distributor ids}


def load_affected_by_orders(order_ids: list[int]) -> None:
    """Inside a batch of follow-ups that writes no attribution or binding:
    ``affected_by_order`` of every order in one query. (A buyer joining in the batch
    joins under their binding's distributor, already in the set.)"""
    ids = list(order_ids)
    known = memo(_AFFECTED, dict)
    found: dict[int, set[int]] = {i: set() for i in ids}
    rows = db.session.execute(
        union(
            select(OrderAttribution.order_id, OrderAttribution.distributor_id).where(
                OrderAttribution.order_id.in_(ids), OrderAttribution.level == 1
            ),
            select(Order.id, Distributor.parent_id)
            .join(Distributor, Distributor.user_id == Order.user_id)
            .where(Order.id.in_(ids)),
            select(Order.id, Binding.distributor_id)
            .join(Binding, Binding.user_id == Order.user_id)
            .where(Order.id.in_(ids)),
        )
    )
    for order_id, distributor_id in rows:
        if distributor_id is not None:
            found[order_id].add(distributor_id)
    known.update(found)


def affected_by_order(order: Order) -> set[int]:
    """Distributors whose task progress an order can move: its level-1 seller, the buyer's
    inviter (if the buyer is a distributor) and the buyer's current binding."""
    known = memo(_AFFECTED, dict)
    if order.id in known:
        return set(known[order.id])
    found = db.session.scalars(_AFFECTED_BY_ORDER, {"order_id": order.id, "user_id": order.user_id})
    return {i for i in found if i is not None}
