"""The distributor tree (closure table): creation, ancestors, moving branches, no cycles."""

import pytest
from sqlalchemy import select

from app.distribution.distributors import (
    DistributionError,
    ancestors,
    create_distributor,
    is_descendant,
    set_parent,
)
from app.distribution.models import DistributorPath
from app.extensions import db

pytestmark = pytest.mark.postgresql  # closure-table SQL


def _tree(make):
    """a -> b -> c -> d, and a -> e."""
    a = create_distributor(make.user().id, None)
    b = create_distributor(make.user().id, a)
    c = create_distributor(make.user().id, b)
    d = create_distributor(make.user().id, c)
    e = create_distributor(make.user().id, a)
    db.session.commit()
    return a, b, c, d, e


def _paths():
    return {
        (p.ancestor_id, p.descendant_id, p.depth)
        for p in db.session.scalars(select(DistributorPath))
    }


def test_ancestors_nearest_first(make):
    a, b, c, d, _ = _tree(make)
    assert ancestors(d.id, 3) == [(1, c.id), (2, b.id), (3, a.id)]
    assert ancestors(d.id, 2) == [(1, c.id), (2, b.id)]
    assert is_descendant(d.id, a.id) and not is_descendant(a.id, d.id)


def test_move_branch_rewrites_paths(make):
    a, b, c, d, e = _tree(make)
    set_parent(c, e)  # c and d move under e
    db.session.commit()
    assert ancestors(d.id, 5) == [(1, c.id), (2, e.id), (3, a.id)]
    assert not is_descendant(c.id, b.id)
    # Rebuilding from parent pointers gives the same closure.
    assert _paths() == _closure_from_parents([a, b, c, d, e])


def test_move_to_root(make):
    _, _, c, d, _ = _tree(make)
    set_parent(c, None)
    db.session.commit()
    assert ancestors(d.id, 5) == [(1, c.id)]
    assert c.parent_id is None


@pytest.mark.parametrize("target", ["self", "child", "grandchild"])
def test_cycles_are_refused(make, target):
    a, b, c, d, _ = _tree(make)
    new_parent = {"self": b, "child": c, "grandchild": d}[target]
    with pytest.raises(DistributionError) as err:
        set_parent(b, new_parent)
    assert err.value.code == "cycle"
    db.session.rollback()
    assert ancestors(d.id, 5) == [(1, c.id), (2, b.id), (3, a.id)]


def _closure_from_parents(nodes):
    by_id = {n.id: n for n in nodes}
    rows = set()
    for node in nodes:
        depth, current = 0, node
        while current is not None:
            rows.add((current.id, node.id, depth))
            current = by_id.get(current.parent_id)
            depth += 1
    return rows
