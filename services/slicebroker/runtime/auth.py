"""API tokens: stored hashed, scoped to a role, an institution and projects, expiring, revocable.

The token file (`auth_tokens_file`) is a YAML mapping with two kinds of entries:

    # hashed (what `python -m slicebroker.runtime.auth issue` and the mesh launcher write):
    k7f2a91c03de:                       # the token id, the part of the token before the dot
      hash: sha256$<salt hex>$<digest hex>
      name: snu-admin
      role: institution-admin           # facility-admin, institution-admin, project-member, service
      institution: snu
      projects: [snu-llm]               # project members only
      expires: 2026-03-01T00:00:00Z     # optional; ISO 8601 or epoch seconds
      revoked: false                    # optional; true refuses the token from the next reload on
    # plaintext (the first format, still read; for tests and throw-away setups):
    s3cret: {name: ops, role: admin}
    # a client certificate, by its subject common name (mTLS peers without a bearer token):
    cert:operator: {name: operator, role: service}

A hashed token reads `sb_<id>.<secret>`. Secrets are 256 random bits, so one salted SHA-256 is as
strong as a slow KDF here (no dictionary to try) and costs a microsecond per call. The file is
re-read when it changes (checked at most once a second), so a revocation or a new token applies
within a second, without a restart.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import hmac
import os
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slicebroker.core.errors import Unauthenticated
from slicebroker.runtime.context import LEGACY_ROLES, PROJECT_MEMBER, ROLES, Principal

TOKEN_PREFIX = "sb_"
CERT_PREFIX = "cert:"
_RELOAD_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class TokenEntry:
    principal: Principal
    # "sha256$salt$digest" for hashed entries; "" for a plaintext entry (the key is the token).
    hash: str = ""
    expires_s: float | None = None
    revoked: bool = False


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + secret.encode()).hexdigest()
    return f"sha256${salt.hex()}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    algorithm, _, rest = stored.partition("$")
    salt_hex, _, digest = rest.partition("$")
    if algorithm != "sha256" or not salt_hex or not digest:
        return False
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    candidate = hashlib.sha256(salt + secret.encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once, to the holder
    token_id: str
    entry: dict[str, Any]  # what goes into the token file under `token_id`


def issue_token(
    name: str,
    role: str,
    institution: str = "",
    projects: Sequence[str] = (),
    expires: datetime.datetime | None = None,
) -> IssuedToken:
    """A new token and its hashed file entry; the plaintext exists only in the return value."""
    role = _role(role)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    entry: dict[str, Any] = {"hash": hash_secret(secret), "name": name, "role": role}
    if institution:
        entry["institution"] = institution
    if projects:
        entry["projects"] = list(projects)
    if expires is not None:
        entry["expires"] = expires.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    return IssuedToken(token=f"{TOKEN_PREFIX}{token_id}.{secret}", token_id=token_id, entry=entry)


def _role(raw: str) -> str:
    role = LEGACY_ROLES.get(raw, raw)
    if role not in ROLES:
        raise ValueError(f"unknown role {raw!r}; one of {', '.join(ROLES)}")
    return role


def _expiry(raw: object) -> float | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, datetime.datetime):
        moment = raw
    else:
        moment = datetime.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def parse_tokens(raw: Mapping[str, Any]) -> dict[str, TokenEntry]:
    """Token-file entries by key (token id, plaintext token or "cert:<CN>"); refuses a bad entry
    loudly, since a silently skipped line would lock someone out or, worse, let someone in."""
    entries: dict[str, TokenEntry] = {}
    for key, spec in raw.items():
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise ValueError(f"token entry {str(key)[:12]!r}…: expected a mapping")
        role = _role(str(spec.get("role", "tenant")))
        projects = tuple(str(p) for p in spec.get("projects") or ())
        institution = str(spec.get("institution", "") or "")
        if role == PROJECT_MEMBER and not (institution and projects):
            raise ValueError(f"token {spec.get('name', '')!r}: a project member needs an institution and projects")
        principal = Principal(name=str(spec.get("name", "")), role=role, institution=institution, projects=projects)
        entries[str(key)] = TokenEntry(
            principal=principal,
            hash=str(spec.get("hash", "") or ""),
            expires_s=_expiry(spec.get("expires")),
            revoked=bool(spec.get("revoked", False)),
        )
    return entries


def _signature(path: Path) -> tuple[int, int, int]:
    # Writers replace the file (a new inode), so a change shows even within one mtime tick.
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class Authenticator:
    """Maps a call's bearer token (or its client certificate) to a principal, or refuses it with the
    reason. With no token file every caller is the local admin (development only)."""

    def __init__(self, path: Path | None = None, entries: Mapping[str, TokenEntry] | None = None) -> None:
        self._path = path
        self._entries: dict[str, TokenEntry] | None = dict(entries) if entries is not None else None
        self._signature: tuple[int, int, int] = (0, 0, 0)
        self._checked = 0.0
        if path is not None:
            self._load()

    @property
    def enabled(self) -> bool:
        return self._entries is not None

    def _load(self) -> None:
        assert self._path is not None
        signature = _signature(self._path)
        raw = yaml.safe_load(self._path.read_text()) or {}
        self._entries = parse_tokens(raw)
        self._signature = signature

    def _refresh(self) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if now - self._checked < _RELOAD_EVERY_S:
            return
        self._checked = now
        try:
            if _signature(self._path) != self._signature:
                self._load()
        except (OSError, ValueError, yaml.YAMLError):
            # Keep serving with the last good file; a half-written one must not open or close the door.
            return

    def authenticate(
        self, metadata: Mapping[str, str], cert_names: Sequence[str] = (), now_s: float | None = None
    ) -> Principal | None:
        """The caller, or None when authentication is off. Raises Unauthenticated with the reason."""
        self._refresh()
        entries = self._entries
        if entries is None:
            return None
        header = metadata.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        now = time.time() if now_s is None else now_s
        if not token:
            for cn in cert_names:
                entry = entries.get(CERT_PREFIX + cn)
                if entry is not None:
                    return self._check(entry, f"certificate {cn!r}", now)
            raise Unauthenticated("missing bearer token (set SLICEBROKER_TOKEN)", metadata={"cause": "missing"})
        if token.startswith(TOKEN_PREFIX) and "." in token:
            token_id, _, secret = token[len(TOKEN_PREFIX) :].partition(".")
            entry = entries.get(token_id)
            if entry is not None and entry.hash and verify_secret(secret, entry.hash):
                return self._check(entry, f"token {token_id}", now)
        entry = entries.get(token)
        # Plaintext entries only: a hashed entry's key is its public id, not a secret.
        if entry is not None and not entry.hash and not token.startswith(CERT_PREFIX):
            return self._check(entry, "token", now)
        raise Unauthenticated("unknown bearer token", metadata={"cause": "unknown"})

    @staticmethod
    def _check(entry: TokenEntry, what: str, now_s: float) -> Principal:
        if entry.revoked:
            raise Unauthenticated(f"{what} was revoked", metadata={"cause": "revoked"})
        if entry.expires_s is not None and now_s >= entry.expires_s:
            when = datetime.datetime.fromtimestamp(entry.expires_s, datetime.UTC).isoformat()
            raise Unauthenticated(f"{what} expired at {when}", metadata={"cause": "expired"})
        return entry.principal


def append_entries(path: Path, entries: Mapping[str, Mapping[str, Any]]) -> None:
    """Adds (or replaces) entries in a token file, atomically (services may be reading it)."""
    current = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    current.update({k: dict(v) for k, v in entries.items()})
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(current, sort_keys=True))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m slicebroker.runtime.auth issue|revoke …`: manage a token file by hand."""
    parser = argparse.ArgumentParser(prog="python -m slicebroker.runtime.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue", help="add a hashed token to FILE and print the token once")
    issue.add_argument("file", type=Path)
    issue.add_argument("--name", required=True)
    issue.add_argument("--role", required=True, choices=[*ROLES, *LEGACY_ROLES])
    issue.add_argument("--institution", default="")
    issue.add_argument("--project", action="append", default=[])
    issue.add_argument("--days", type=float, default=0.0, help="expire after this many days (0: never)")
    revoke = sub.add_parser("revoke", help="mark a token id revoked")
    revoke.add_argument("file", type=Path)
    revoke.add_argument("token_id")
    args = parser.parse_args(argv)
    if args.command == "issue":
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=args.days) if args.days > 0 else None
        issued = issue_token(args.name, args.role, args.institution, args.project, expires)
        append_entries(args.file, {issued.token_id: issued.entry})
        sys.stdout.write(issued.token + "\n")
    else:
        raw = yaml.safe_load(args.file.read_text()) or {}
        if args.token_id not in raw:
            raise SystemExit(f"no token {args.token_id!r} in {args.file}")
        append_entries(args.file, {args.token_id: {**raw[args.token_id], "revoked": True}})


if __name__ == "__main__":
    main()
