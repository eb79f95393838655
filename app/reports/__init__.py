"""Merchant reports: sales, commission, products, distributors, customers over time."""
