"""Promotion posters: per-distributor shop posters and per-product posters with QR codes."""
