"""The config file: profiles, and the precedence flags > environment > config file > default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slicebroker.cli import _config as config
from tests.unit.cli.test_slicectl import slicectl
from tests.unit.client.fakemesh import FakeMesh, closed_port

CONFIG = """
default_profile = "lab"

[profiles.lab]
broker_addr = "{address}"
inventory_addr = "{address}"
token = "from-config"
timeout = 4

[profiles.dead]
inventory_addr = "{dead}"
token_file = "token.txt"
tls_ca_file = "pki/ca.pem"
"""


def write(tmp_path: Path, address: str, dead: str = "127.0.0.1:1") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(address=address, dead=dead))
    (tmp_path / "token.txt").write_text("from-token-file\n")
    return path


def settings(result_stdout: str) -> dict[str, tuple[object, str]]:
    document = json.loads(result_stdout)
    return {k: (v["value"], v["source"]) for k, v in document["settings"].items()}


def test_the_default_profile_is_used_and_calls_go_where_it_says(mesh: FakeMesh, tmp_path: Path) -> None:
    env = {"SLICEBROKER_CONFIG": str(write(tmp_path, mesh.address))}
    result = slicectl("skus", env=env)
    assert result.exit_code == 0, result.output
    assert mesh.recorder.calls[-1].metadata["authorization"] == "Bearer from-config"


def test_flags_beat_env_beat_config(mesh: FakeMesh, tmp_path: Path) -> None:
    env = {"SLICEBROKER_CONFIG": str(write(tmp_path, mesh.address)), "SLICEBROKER_TOKEN": "from-env"}
    shown = settings(slicectl("--json", "config", "show", env=env).stdout)
    assert shown["token"] == ("from-e…", "env")
    assert shown["timeout"] == (4.0, "config")
    assert shown["broker_addr"] == (mesh.address, "config")
    assert shown["quota_addr"] == (None, "default")
    slicectl("--token", "from-flag", "skus", env=env)
    assert mesh.recorder.calls[-1].metadata["authorization"] == "Bearer from-flag"
    slicectl("skus", env=env)
    assert mesh.recorder.calls[-1].metadata["authorization"] == "Bearer from-env"


def test_profile_by_flag_or_env_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    with closed_port() as dead:
        path = write(tmp_path, "127.0.0.1:2", dead)
        for args, env in (
            (["--profile", "dead"], {}),
            ([], {"SLICEBROKER_PROFILE": "dead"}),
        ):
            result = slicectl(*args, "--json", "config", "show", env={"SLICEBROKER_CONFIG": str(path), **env})
            assert result.exit_code == 0, result.output
            shown = settings(result.stdout)
            assert json.loads(result.stdout)["profile"] == "dead"
            assert shown["token"] == ("from-t…", "config")
            assert shown["tls_ca_file"] == (str(tmp_path / "pki" / "ca.pem"), "config")
            assert shown["broker_addr"] == (None, "default")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[profiles.lab]\nbrokr_addr = 'x'\n", "unknown key(s) brokr_addr"),
        ("[profiles.lab]\ntimeout = -1\n", "timeout must be a positive number"),
        ("broker_addr = 'x'\n", "unknown top-level key(s) broker_addr"),
        ("default_profile = 'nope'\n[profiles.lab]\n", "no profile 'nope' (profiles: lab)"),
        ("[profiles.lab\n", "config.toml"),
    ],
)
def test_a_bad_config_file_is_a_usage_error_naming_the_problem(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    result = slicectl("skus", env={"SLICEBROKER_CONFIG": str(path)})
    assert result.exit_code == 2
    assert complaint in result.stderr


def test_an_unknown_profile_without_a_file_is_an_error(tmp_path: Path) -> None:
    result = slicectl("--profile", "prod", "skus", env={"SLICEBROKER_CONFIG": str(tmp_path / "none.toml")})
    assert result.exit_code == 2
    assert "profile 'prod' asked for, but there is no config file" in result.stderr


def test_the_config_path_follows_xdg_and_the_variable(tmp_path: Path) -> None:
    assert config.config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "slicebroker" / "config.toml"
    assert config.config_path({"SLICEBROKER_CONFIG": "/etc/sb.toml"}) == Path("/etc/sb.toml")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_the_shell(shell: str) -> None:
    result = slicectl("completion", shell)
    assert result.exit_code == 0, result.output
    assert "_SLICECTL_COMPLETE" in result.stdout
