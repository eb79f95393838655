"""Bench-only WSGI module: the real app plus a null route to measure Flask's own floor.

Never used in production; bench/pages.py serves it with gunicorn and gunicorn.conf.py.
"""

import os

from app import create_app

app = create_app()
if os.environ.get("BENCH_UNCACHED"):  # measure the page without app/shop/cache.py
    app.config["SHOP_FRAGMENT_CACHE"] = False


@app.get("/__null")
def null():
    """An empty 200: routing, context push and response, nothing else."""
    return ""
