"""Traditional distribution (传统分销): distributors, binding, commissions, ledger, payouts."""
