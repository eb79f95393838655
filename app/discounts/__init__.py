"""Timed discounts (限时折扣): a price per SKU or a percentage off a product, in a window."""
