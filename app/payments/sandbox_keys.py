"""Key pairs for development and tests, shared by the shop and the WeChat stand-in.

WeChat Pay APIv3 needs two RSA-2048 pairs: the merchant's (we sign requests, WeChat
verifies with our certificate serial) and WeChat Pay's (WeChat signs responses and
notices, we verify with its public key and public key id). Without real credentials the
web process, the worker and the stand-in must agree on both, so they are generated once
into ``instance/wechatpay-sandbox/``: built in a temporary folder and moved into place with
one ``rename`` (atomic), so concurrent first starts all end up reading the same files.

Never used in production: config.py calls this only for development and tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MERCHANT_PRIVATE = "merchant_private_key.pem"
MERCHANT_PUBLIC = "merchant_public_key.pem"
WECHATPAY_PRIVATE = "wechatpay_private_key.pem"
WECHATPAY_PUBLIC = "wechatpay_public_key.pem"
IDS = "ids.json"


@dataclass(frozen=True)
class SandboxKeys:
    """Where the development key files are, and their ids."""

    directory: Path
    merchant_serial: str
    public_key_id: str

    @property
    def merchant_private_path(self) -> Path:
        return self.directory / MERCHANT_PRIVATE

    @property
    def merchant_public_path(self) -> Path:
        return self.directory / MERCHANT_PUBLIC

    @property
    def wechatpay_private_path(self) -> Path:
        return self.directory / WECHATPAY_PRIVATE

    @property
    def wechatpay_public_path(self) -> Path:
        return self.directory / WECHATPAY_PUBLIC


def _write_pair(folder: Path, private_name: str, public_name: str) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (folder / private_name).write_bytes(private_pem)
    (folder / private_name).chmod(0o600)
    (folder / public_name).write_bytes(public_pem)
    return public_der


def _generate(folder: Path) -> None:
    merchant_der = _write_pair(folder, MERCHANT_PRIVATE, MERCHANT_PUBLIC)
    wechatpay_der = _write_pair(folder, WECHATPAY_PRIVATE, WECHATPAY_PUBLIC)
    # Look-alikes of WeChat's formats: a 40-hex certificate serial, "PUB_KEY_ID_" + digits.
    serial = hashlib.sha1(merchant_der).hexdigest().upper()  # noqa: S324 - an id, not security
    digits = str(int.from_bytes(hashlib.sha256(wechatpay_der).digest()[:12], "big")).zfill(28)
    ids = {"merchant_serial": serial, "public_key_id": f"PUB_KEY_ID_{digits[:28]}"}
    (folder / IDS).write_text(json.dumps(ids, indent=2))


def ensure_sandbox_keys(directory: str | os.PathLike) -> SandboxKeys:
    """Return the development keys in ``directory``, generating them the first time."""
    target = Path(directory)
    if not (target / IDS).exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".wechatpay-keys-", dir=target.parent))
        try:
            _generate(staging)
            try:
                staging.rename(target)  # atomic; fails if another process got there first
            except OSError:
                if not (target / IDS).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    ids = json.loads((target / IDS).read_text())
    return SandboxKeys(target, ids["merchant_serial"], ids["public_key_id"])
