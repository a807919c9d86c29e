"""slicectl's config file: named profiles of connection settings, so that one machine can talk to
several meshes (`make run`'s, a staging one, production) without juggling variables.

Where: `$SLICEBROKER_CONFIG` if set, else `$XDG_CONFIG_HOME/slicebroker/config.toml` (by default
`~/.config/slicebroker/config.toml`). A missing file is no error: it just provides nothing.

    default_profile = "local"        # used when neither --profile nor SLICEBROKER_PROFILE is given

    [profiles.local]
    broker_addr = "127.0.0.1:50053"
    inventory_addr = "127.0.0.1:50051"
    quota_addr = "127.0.0.1:50052"
    accounting_addr = "127.0.0.1:50054"
    token = "sbadm_..."              # or token_file = "~/.config/slicebroker/local.token"
    tls_ca_file = "/path/to/.run/pki/ca.pem"
    tls_cert_file = "/path/to/.run/pki/client.pem"
    tls_key_file = "/path/to/.run/pki/client.key"
    timeout = 10                     # seconds

Precedence, per setting: command-line flag > environment variable (SLICEBROKER_*) > the selected
profile of the config file > built-in default. The profile is chosen by --profile, else
SLICEBROKER_PROFILE, else `default_profile`, else "default" (and it is an error to name a profile
the file lacks, except that implicit "default").
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_CONFIG = "SLICEBROKER_CONFIG"
ENV_PROFILE = "SLICEBROKER_PROFILE"
DEFAULT_PROFILE = "default"

# Settings a profile may hold, with the type each must have.
_STRINGS = (
    "broker_addr",
    "inventory_addr",
    "quota_addr",
    "accounting_addr",
    "token",
    "token_file",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
)
_PATHS = ("token_file", "tls_ca_file", "tls_cert_file", "tls_key_file")
KEYS = (*_STRINGS, "timeout")


class ConfigError(ValueError):
    """The config file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class Profile:
    """The settings of one profile, as read (paths expanded); `source` names where they came from."""

    name: str
    path: Path
    settings: Mapping[str, Any] = field(default_factory=dict)
    found: bool = False
    """Whether the file exists (a missing file gives an empty profile)."""

    def get(self, key: str) -> Any:
        return self.settings.get(key)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]).expanduser() if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "slicebroker" / "config.toml"


def load_profile(name: str | None, environ: Mapping[str, str] | None = None) -> Profile:
    """The profile `name` (None: SLICEBROKER_PROFILE, then the file's default_profile, then
    "default") of the config file. Raises ConfigError for a malformed file or an unknown profile."""
    env = os.environ if environ is None else environ
    path = config_path(env)
    explicit = name or env.get(ENV_PROFILE) or None
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if explicit and explicit != DEFAULT_PROFILE:
            raise ConfigError(f"profile {explicit!r} asked for, but there is no config file at {path}") from None
        return Profile(explicit or DEFAULT_PROFILE, path)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: [profiles] must be a table of tables")
    unknown_top = sorted(set(document) - {"profiles", "default_profile"})
    if unknown_top:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(unknown_top)}; use [profiles.<name>] tables")
    chosen = explicit or document.get("default_profile") or DEFAULT_PROFILE
    # Every profile is checked, so that a typo shows up before the day that profile is needed.
    for other, raw in profiles.items():
        if other != chosen:
            _check(path, other, raw, read_token=False)
    if chosen not in profiles:
        if chosen == DEFAULT_PROFILE and not explicit and "default_profile" not in document:
            return Profile(chosen, path, found=True)
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"{path}: no profile {chosen!r} (profiles: {known})")
    return Profile(chosen, path, _check(path, chosen, profiles[chosen]), found=True)


def _check(path: Path, name: str, raw: Any, *, read_token: bool = True) -> dict[str, Any]:
    where = f"{path}: [profiles.{name}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "timeout":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{where}: timeout must be a positive number of seconds")
            settings[key] = float(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string")
        else:
            # Relative paths are relative to the config file, so a profile works from any directory.
            settings[key] = str((path.parent / Path(value).expanduser()).resolve()) if key in _PATHS else value
    if "token" in settings and "token_file" in settings:
        raise ConfigError(f"{where}: give token or token_file, not both")
    if "token_file" in settings and read_token:
        try:
            settings["token"] = Path(settings.pop("token_file")).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: token_file: {exc}") from None
    return settings
