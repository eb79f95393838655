"""The ledger: how money moves.

- ``kinds``: every entry kind and state, with its Chinese label, once;
- ``models``: the entries and the history of their states;
- ``entries``: writing earnings and rewards, reversing them, and the one transition map
  every state change of an entry goes through;
- ``settlement``: when an entry may settle (one rule for every caller);
- ``balances``: what a beneficiary has, derived from the entries.

This package sits low: it imports models and the core, never the areas that use it.
"""
