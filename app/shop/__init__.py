"""The customer-facing H5 shop pages."""
