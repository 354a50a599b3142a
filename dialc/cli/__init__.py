"""Command line → front end / compiler / runtime calls; exit 0 clean, 1 errors found, 2 usage or crash.

The package's modules depend one way: `lint` (validate without typer) ← `common` (typer options and
helpers) ← `compile_cmds`, `run_cmds` (the commands) ← this module, which assembles the typer app on
first use. A plain `dialc validate` never builds it: main() hands it to `lint` directly.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from dialc.cli.lint import ValidateArgs, echo, parse_validate_args, validate
from dialc.security import allowed_paths

if TYPE_CHECKING:
    import typer

APP_HELP = "dialc: compile .dial specs into domain fine-tuning data pipelines (Dial-insight method) and run them."


def build_app() -> typer.Typer:
    """The typer app: every command of compile_cmds, then of run_cmds, under the --version callback."""
    import typer

    from dialc.cli import compile_cmds, init_cmd, run_cmds
    from dialc.cli.common import root

    app = typer.Typer(name="dialc", help=APP_HELP, no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False, rich_markup_mode=None)
    app.callback()(root)
    for name, command in [*compile_cmds.COMMANDS, *run_cmds.COMMANDS, *init_cmd.COMMANDS]:
        app.command(name=name)(command)
    return app


def __getattr__(name: str) -> Any:
    """`dialc.cli.app` is built on first access, so that importing dialc.cli stays light."""
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _app() -> typer.Typer:
    app = globals().get("app")
    if app is None:
        app = globals()["app"] = build_app()
    return app


def main() -> None:
    """Entry point: any exception escaping a command is a dialc bug → 'internal error', exit 2."""
    try:
        fast = parse_validate_args(sys.argv[1:])
        if fast is not None:
            sys.exit(_validate_without_gc(fast))
        _run_app()
    except KeyboardInterrupt:
        echo("dialc: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        _internal_error(exc)


def _validate_without_gc(args: ValidateArgs) -> int:
    """Validate with the cyclic collector paused until the nodes are gone (they die by reference count), so
    that resuming it finds nothing to traverse (see frontend.paused_gc)."""
    from dialc.frontend import paused_gc

    with paused_gc():
        return validate(args.specs, args.overrides, args.fmt, [*args.allow, *allowed_paths()])


def _run_app() -> None:
    import typer

    try:
        code = _app()(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        echo("dialc: interrupted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (exit 2) and the like; typer ships its own click
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)


def _internal_error(exc: Exception) -> None:
    import traceback

    echo(f"dialc: internal error: {type(exc).__name__}: {exc}", err=True)
    echo(traceback.format_exc(), err=True)
    sys.exit(2)
