"""``APP_ENV=production`` refuses unsafe configuration, naming every problem at once:
create_app with the environment as an operator sets it, the flask CLI and gunicorn.

Key files are real RSA keys generated into temporary folders; the stand-in's own keys are
the ones development and tests generate under instance/wechatpay-sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app import create_app
from app.payments.sandbox_keys import ensure_sandbox_keys
from config import (
    SANDBOX_AES_KEY,
    SANDBOX_APIV3_KEY,
    SANDBOX_APPID,
    SANDBOX_MCHID,
    SANDBOX_PAY_KEYS_DIR,
    SANDBOX_SECRET,
    SANDBOX_TOKEN,
    UnsafeConfiguration,
)

ROOT = Path(__file__).resolve().parent.parent
AES_KEY = "D85nc2cbgix2BGIYJhWQQaSW7jq68kCCGQOAMXH14zA"  # 43 chars, decodes to 32 bytes
# Every variable the checks read: removed from the environment before each test, so the
# machine's own settings (or a .env) cannot make a test pass or fail.
VARIABLES = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "WECHAT_APPID",
    "WECHAT_SECRET",
    "WECHAT_TOKEN",
    "WECHAT_AES_KEY",
    "WECHAT_ALLOW_PLAINTEXT",
    "WECHAT_API_BASE",
    "WECHAT_OPEN_BASE",
    "WECHAT_MP_BASE",
    "WECHAT_PAY_API_BASE",
    "WECHAT_PAY_MCHID",
    "WECHAT_PAY_APIV3_KEY",
    "WECHAT_PAY_PRIVATE_KEY_PATH",
    "WECHAT_PAY_CERT_SERIAL",
    "WECHAT_PAY_PUBLIC_KEY_PATH",
    "WECHAT_PAY_PUBLIC_KEY_ID",
)


def _pem_pair(folder: Path, name: str, key) -> tuple[Path, Path]:
    private = folder / f"{name}_key.pem"
    public = folder / f"{name}_pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """A merchant API key and a WeChat Pay public key, as the merchant platform gives them."""
    folder = tmp_path_factory.mktemp("wechatpay")
    merchant, _ = _pem_pair(folder, "apiclient", rsa.generate_private_key(65537, 2048))
    wechatpay_private, wechatpay_public = _pem_pair(
        folder, "wechatpay", rsa.generate_private_key(65537, 2048)
    )
    ec_private, ec_public = _pem_pair(folder, "ec", ec.generate_private_key(ec.SECP256R1()))
    garbage = folder / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    return {
        "merchant": merchant,
        "wechatpay_public": wechatpay_public,
        "wechatpay_private": wechatpay_private,
        "ec_private": ec_private,
        "ec_public": ec_public,
        "garbage": garbage,
    }


@pytest.fixture
def production_env(keys, tmp_path) -> dict[str, str]:
    """A complete, safe production environment (real generated keys in a tmp folder)."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "0f3c9a6e1b7d4f2a8c5e9b1d3f7a2c6e4b8d0f1a3c5e7b9d",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # connected lazily: never here
        "PUBLIC_BASE_URL": "https://shop.example.cn/",
        "WECHAT_APPID": "wx8f3a2b1c0d9e7f65",
        "WECHAT_SECRET": "3b9e1f7a5c2d8e4f6a0b1c3d5e7f9a2b",
        "WECHAT_TOKEN": "tK7mQ2xV9pR4",
        "WECHAT_AES_KEY": AES_KEY,
        "WECHAT_PAY_MCHID": "1612345678",
        "WECHAT_PAY_APIV3_KEY": "Vb4Nq8Lr2Tz6Wk0Ys3Hd7Fg1Jm5Pc9Xa",
        "WECHAT_PAY_PRIVATE_KEY_PATH": str(keys["merchant"]),
        "WECHAT_PAY_CERT_SERIAL": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "WECHAT_PAY_PUBLIC_KEY_PATH": str(keys["wechatpay_public"]),
        "WECHAT_PAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0116123456782025010100000000000001",
    }


def start(monkeypatch, env: dict[str, str]):
    """create_app("production") with exactly ``env`` (None values left unset)."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    return create_app("production")


def refusal(monkeypatch, env: dict[str, str]) -> list[str]:
    with pytest.raises(UnsafeConfiguration) as caught:
        start(monkeypatch, env)
    return caught.value.problems


def test_a_safe_production_configuration_starts(monkeypatch, production_env):
    app = start(monkeypatch, production_env)
    assert app.config["ENV_NAME"] == "production" and not app.testing
    assert app.config["PUBLIC_BASE_URL"] == "https://shop.example.cn"
    assert app.config["WECHAT_API_BASE"] == "https://api.weixin.qq.com"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["WECHAT_AES_KEY"] == AES_KEY


def test_plaintext_on_purpose_starts_without_an_aes_key(monkeypatch, production_env):
    app = start(
        monkeypatch, {**production_env, "WECHAT_AES_KEY": None, "WECHAT_ALLOW_PLAINTEXT": "1"}
    )
    assert app.config["WECHAT_AES_KEY"] is None and app.config["WECHAT_ALLOW_PLAINTEXT"]


UNSAFE = {
    "short-secret-key": ({"SECRET_KEY": "s" * 31}, "SECRET_KEY is 31 bytes"),
    "test-secret-key": ({"SECRET_KEY": "test-secret-key"}, "SECRET_KEY is 15 bytes"),
    "http-public-base-url": (
        {"PUBLIC_BASE_URL": "http://shop.example.cn"},
        "PUBLIC_BASE_URL must be an https:// origin",
    ),
    "no-host-public-base-url": (
        {"PUBLIC_BASE_URL": "https://"},
        "PUBLIC_BASE_URL must be an https:// origin",
    ),
    "http-api-origin": (
        {"WECHAT_API_BASE": "http://127.0.0.1:5001"},
        "WECHAT_API_BASE must be an https:// origin",
    ),
    "stand-in-token": ({"WECHAT_TOKEN": SANDBOX_TOKEN}, "WECHAT_TOKEN is the local"),
    "stand-in-appid": ({"WECHAT_APPID": SANDBOX_APPID}, "WECHAT_APPID is the local"),
    "stand-in-secret": ({"WECHAT_SECRET": SANDBOX_SECRET}, "WECHAT_SECRET is the local"),
    "stand-in-aes-key": ({"WECHAT_AES_KEY": SANDBOX_AES_KEY}, "WECHAT_AES_KEY is the local"),
    "stand-in-mchid": ({"WECHAT_PAY_MCHID": SANDBOX_MCHID}, "WECHAT_PAY_MCHID is the local"),
    "stand-in-apiv3-key": (
        {"WECHAT_PAY_APIV3_KEY": SANDBOX_APIV3_KEY},
        "WECHAT_PAY_APIV3_KEY is the local",
    ),
    "no-aes-key": ({"WECHAT_AES_KEY": None}, "WECHAT_AES_KEY is not set"),
    "no-aes-key-plaintext-not-1": (
        {"WECHAT_AES_KEY": None, "WECHAT_ALLOW_PLAINTEXT": "true"},
        "WECHAT_AES_KEY is not set",
    ),
    "malformed-aes-key": (
        {"WECHAT_AES_KEY": AES_KEY[:-1]},
        "WECHAT_AES_KEY must be the 43-character EncodingAESKey",
    ),
    "apiv3-key-not-32-bytes": (
        {"WECHAT_PAY_APIV3_KEY": "too-short"},
        "WECHAT_PAY_APIV3_KEY must be 32 bytes, not 9",
    ),
    "private-key-missing-file": (
        {"WECHAT_PAY_PRIVATE_KEY_PATH": "/nonexistent/apiclient_key.pem"},
        "/nonexistent/apiclient_key.pem does not exist",
    ),
    "public-key-missing-file": (
        {"WECHAT_PAY_PUBLIC_KEY_PATH": "/nonexistent/pub_key.pem"},
        "/nonexistent/pub_key.pem does not exist",
    ),
}
for _name in (
    "WECHAT_PAY_MCHID",
    "WECHAT_PAY_APIV3_KEY",
    "WECHAT_PAY_PRIVATE_KEY_PATH",
    "WECHAT_PAY_CERT_SERIAL",
    "WECHAT_PAY_PUBLIC_KEY_PATH",
    "WECHAT_PAY_PUBLIC_KEY_ID",
    "SECRET_KEY",
    "PUBLIC_BASE_URL",
):
    UNSAFE[f"missing-{_name}"] = ({_name: None}, f"missing required environment variables: {_name}")


@pytest.mark.parametrize(("change", "problem"), UNSAFE.values(), ids=UNSAFE.keys())
def test_each_unsafe_value_is_refused_by_name(monkeypatch, production_env, change, problem):
    problems = refusal(monkeypatch, {**production_env, **change})
    assert len(problems) == 1, problems
    assert problem in problems[0]


# Key files that exist but are not what the setting needs (from the ``keys`` fixture).
BAD_KEY_FILES = {
    "private-is-garbage": ("WECHAT_PAY_PRIVATE_KEY_PATH", "garbage", "not an RSA private key"),
    "private-is-a-public-key": (
        "WECHAT_PAY_PRIVATE_KEY_PATH",
        "wechatpay_public",
        "not an RSA private key",
    ),
    "private-is-ec": ("WECHAT_PAY_PRIVATE_KEY_PATH", "ec_private", "not an RSA private key"),
    "public-is-garbage": ("WECHAT_PAY_PUBLIC_KEY_PATH", "garbage", "not an RSA public key"),
    "public-is-a-private-key": (
        "WECHAT_PAY_PUBLIC_KEY_PATH",
        "wechatpay_private",
        "not an RSA public key",
    ),
    "public-is-ec": ("WECHAT_PAY_PUBLIC_KEY_PATH", "ec_public", "not an RSA public key"),
}


@pytest.mark.parametrize(("setting", "file", "problem"), BAD_KEY_FILES.values(), ids=BAD_KEY_FILES)
def test_key_files_that_do_not_parse_are_refused(
    monkeypatch, production_env, keys, setting, file, problem
):
    problems = refusal(monkeypatch, {**production_env, setting: str(keys[file])})
    assert len(problems) == 1 and problems[0].startswith(f"{setting}: ")
    assert problem in problems[0]


@pytest.mark.parametrize(
    ("setting", "sandbox_file"),
    [
        ("WECHAT_PAY_PRIVATE_KEY_PATH", "merchant_private_key.pem"),
        ("WECHAT_PAY_PUBLIC_KEY_PATH", "wechatpay_public_key.pem"),
    ],
)
def test_the_stand_ins_key_files_are_refused_in_place_and_as_copies(
    monkeypatch, production_env, tmp_path, setting, sandbox_file
):
    ensure_sandbox_keys(SANDBOX_PAY_KEYS_DIR)  # what development and tests generate
    in_place = SANDBOX_PAY_KEYS_DIR / sandbox_file
    problems = refusal(monkeypatch, {**production_env, setting: str(in_place)})
    assert problems == [
        f"{setting} points at the local WeChat stand-in's development keys ({in_place.resolve()})"
    ]
    copy = tmp_path / "copied.pem"
    shutil.copyfile(in_place, copy)
    problems = refusal(monkeypatch, {**production_env, setting: str(copy)})
    assert len(problems) == 1 and "copy of the local WeChat stand-in's" in problems[0]


def test_every_problem_is_named_at_once(monkeypatch, production_env):
    env = {
        **production_env,
        "SECRET_KEY": "dev",
        "PUBLIC_BASE_URL": "http://shop.example.cn",
        "WECHAT_TOKEN": SANDBOX_TOKEN,
        "WECHAT_AES_KEY": None,
        "WECHAT_PAY_PUBLIC_KEY_PATH": "/nonexistent/pub_key.pem",
        "WECHAT_PAY_MCHID": None,
    }
    with pytest.raises(UnsafeConfiguration) as caught:
        start(monkeypatch, env)
    message = str(caught.value)
    for name in (
        "SECRET_KEY",
        "PUBLIC_BASE_URL",
        "WECHAT_TOKEN",
        "WECHAT_AES_KEY",
        "WECHAT_PAY_PUBLIC_KEY_PATH",
        "WECHAT_PAY_MCHID",
    ):
        assert name in message
    assert len(caught.value.problems) == 6
    assert message.startswith("APP_ENV=production refuses to start: 6 unsafe")


def _clean_environ(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return {**base, **{k: v for k, v in env.items() if v is not None}}


def test_the_flask_cli_exits_naming_the_problems(production_env):
    env = _clean_environ({**production_env, "SECRET_KEY": "short", "WECHAT_AES_KEY": None})
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "refuses to start" in done.stderr
    assert "SECRET_KEY is 5 bytes" in done.stderr and "WECHAT_AES_KEY is not set" in done.stderr


def test_gunicorn_exits_naming_the_problems(production_env, tmp_path):
    env = _clean_environ(
        {
            **production_env,
            "PUBLIC_BASE_URL": "http://shop.example.cn",
            "GUNICORN_BIND": "127.0.0.1:0",
            "WEB_CONCURRENCY": "1",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "PUBLIC_BASE_URL must be an https:// origin" in done.stderr
