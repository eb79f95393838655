"""``GET /readyz`` (ready to serve) and ``GET /metrics`` (Prometheus, guarded).

``/metrics`` answers only a caller whose address is in ``METRICS_ALLOW`` (addresses or
networks, comma-separated; default the loopback) or who sends ``Authorization: Bearer
<METRICS_TOKEN>``. Behind proxies the address is the client's as ``TRUSTED_PROXIES``
allows (ProxyFix); anyone else gets 403.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, current_app, jsonify, request

from app.core.metrics import CONTENT_TYPE, render
from app.ops.gauges import ShopGauges
from app.ops.readiness import readiness

bp = Blueprint("ops", __name__)


@bp.get("/readyz")
def readyz():
    """200 when the database and Redis answer and the schema is at the migrations' head."""
    checks = readiness()
    ready = all(ok for ok, _ in checks.values())
    body = {name: "ok" if ok else "error" for name, (ok, _) in checks.items()}
    problems = {name: why for name, (ok, why) in checks.items() if not ok}
    for name, why in problems.items():
        current_app.logger.warning("readyz %s: %s", name, why)
    return jsonify(status="ok" if ready else "error", checks=body), 200 if ready else 503


def _allowed_networks(value: str) -> list:
    networks = []
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            current_app.logger.warning("METRICS_ALLOW: %r is not an address or network", part)
    return networks


def metrics_allowed() -> bool:
    """The caller's address is allowed, or it sent the metrics bearer token."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    header = request.headers.get("Authorization", "")
    given = header[7:].strip() if header.startswith("Bearer ") else ""
    if token and given and hmac.compare_digest(given.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in net for net in _allowed_networks(current_app.config["METRICS_ALLOW"]))


@bp.get("/metrics")
def metrics():
    if not metrics_allowed():
        return Response("forbidden\n", status=403, mimetype="text/plain")
    return Response(render([ShopGauges()]), content_type=CONTENT_TYPE)
