"""`slicectl config` (which settings are in effect and where each came from) and `slicectl
completion` (the shell completion script). Registered on the main app by `register(app)`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from slicebroker.cli import _config as config
from slicebroker.cli._render import Output

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]

config_app = typer.Typer(
    help="The connection settings in effect, and the config file they may come from.", no_args_is_help=True
)

_SECRET = ("token", "tls_key_file")


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


def _shown(key: str, value: object) -> object:
    # The token is a credential: show that one is set, and enough of it to tell two apart.
    if key == "token" and isinstance(value, str) and value:
        return value[:6] + "…"
    return value


@config_app.command(
    "show",
    epilog="Examples:\n\n  $ slicectl config show\n  $ slicectl --profile prod config show --json",
)
def show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Each connection setting, its value (the token abbreviated) and its source: flag, env, config or default."""
    from slicebroker.cli.main import _Globals

    globals_: _Globals = ctx.obj
    out = Output(as_json or globals_.as_json)
    options = globals_.options
    rows = {key: (_shown(key, getattr(options, key)), source) for key, source in globals_.sources.items()}
    document = {
        "profile": globals_.profile.name,
        "config_file": str(globals_.profile.path),
        "config_file_exists": globals_.profile.found,
        "settings": {key: {"value": value, "source": source} for key, (value, source) in rows.items()},
    }
    table = Table("setting", "value", "source", box=None, pad_edge=False)
    for key, (value, source) in rows.items():
        table.add_row(key, "—" if value is None else str(value), source)
    exists = "" if globals_.profile.found else " (not found)"
    table.caption = f"profile {globals_.profile.name} of {globals_.profile.path}{exists}"
    out.result(document, table)


@config_app.command("path")
def path() -> None:
    """Where slicectl looks for its config file ($SLICEBROKER_CONFIG, else ~/.config/slicebroker/config.toml)."""
    typer.echo(str(config.config_path()))


def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh, fish or powershell.", show_default=False)],
) -> None:
    """Print the shell completion script of slicectl.

    Load it in the current shell, or install it once:

      bash:  source <(slicectl completion bash)      # or add that line to ~/.bashrc

      zsh:   slicectl completion zsh > "${fpath[1]}/_slicectl"   # then start a new shell

      fish:  slicectl completion fish > ~/.config/fish/completions/slicectl.fish
    """
    # Typer's own generator (what --show-completion prints), without having to guess the shell.
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="slicectl", complete_var="_SLICECTL_COMPLETE", shell=shell.value)
    typer.echo(script)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
    app.command(
        "completion",
        epilog="Examples:\n\n  $ source <(slicectl completion bash)\n  $ slicectl completion zsh > ~/.zfunc/_slicectl",
    )(completion)
