"""Customers (WeChat OAuth sign-in), merchant staff and Open API tokens."""
