"""What the audit log reads of distribution rows staff change (admin pages and Open API)."""

from __future__ import annotations

from app.core.audit import form_int, rows
from app.distribution.models import Binding, CommissionRule

# The commission rules of the view's product_id, keyed by rule id.
RULES_OF_PRODUCT = rows(
    CommissionRule,
    "commission_rule",
    where=lambda product_id, **_: CommissionRule.product_id == product_id,
)
# The binding of the customer named by the form's user_id (manual rebind).
BINDING_OF_FORM_USER = rows(
    Binding, "binding", where=lambda **_: Binding.user_id == form_int("user_id")
)
