"""风控 (risk control): signals computed after payments and refunds, holds for review.

- ``models.py``: the flags (one per signal and subject: a rerun flags once) and settings;
- ``signals.py``: the checks, run by ``jobs/risk.py`` (never on a request path);
- ``review.py``: the staff queue and the release / reject decisions (audited);
- ``linked.py``: a person's linked accounts (shared phone, address, payer, device).

Holds themselves live in the ledger (``app/ledger/holds.py``); risk imports the ledger,
never the other way round.
"""
