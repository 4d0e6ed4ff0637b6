"""Shared pieces of the command line: the root group, error handling, options, output."""

from __future__ import annotations

import getpass
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ledger.errors import InvalidInput, LedgerError
from ledger.values import OUTSIDE, check_id, parse_instant

if TYPE_CHECKING:  # imported when a command runs: `-h` and `--version` need none of them
    from ledger import Ledger, Meta, Receipt
    from ledger.quickread import LedgerView

__all__ = [
    "ID",
    "INSTANT",
    "LazyGroup",
    "LedgerGroup",
    "change_options",
    "check_order",
    "counted",
    "echo_json",
    "echo_table",
    "json_option",
    "ledger_of",
    "report",
    "view_of",
    "warn_unknown_groups",
]

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class BadInput(click.ClickException):
    exit_code = 2


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


# Errors of these libraries are the database's: said as `ledger.urls` explains them.
_DATABASE_LIBRARIES = {"sqlalchemy", "eventsourcing", "eventsourcing_sqlalchemy", "psycopg", "sqlite3"}


def _from_database(e: BaseException) -> bool:
    return type(e).__module__.split(".")[0] in _DATABASE_LIBRARIES


class LedgerGroup(click.Group):
    """A click group whose errors are one line on stderr: exit 2 bad input, 1 failure."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInput as e:
            raise BadInput(str(e)) from None
        except LedgerError as e:
            raise click.ClickException(_one_line(str(e)) or "failed") from None
        except OSError as e:  # "[Errno 2] No such file or directory: 'x'" said as "x: No such file ..."
            where = f"{e.filename}: " if e.filename is not None else ""
            raise click.ClickException(_one_line(f"{where}{e.strerror or e}") or "failed") from None
        except OverflowError:  # date arithmetic past datetime's years: an input near them
            raise BadInput(f"a date or time too far in the past or the future: use none {OUTSIDE}") from None
        except Exception as e:
            if not _from_database(e):
                raise
            from eventsourcing.domain import OriginatorVersionError

            from ledger.urls import parse_database_url, unreachable

            url = parse_database_url(ctx.find_root().params["db"])
            if isinstance(e, OriginatorVersionError):  # stored rows missing or out of order
                raise click.ClickException(
                    f"the ledger {url.masked} is damaged: {_gap(e)}; "
                    "restore it from a backup (docs/operations.md, Backup and rebuild)"
                ) from None
            raise click.ClickException(str(unreachable(url, e))) from None


def _gap(e: BaseException) -> str:
    """What a version gap in an aggregate's stored events says (the library's is a bare pair)."""
    if len(e.args) == 2 and all(isinstance(a, int) for a in e.args):
        found, due = e.args
        return f"an aggregate's next stored event is version {found}, not {due}"
    return _one_line(str(e)) or "an aggregate's stored events are out of order"


class LazyGroup(LedgerGroup):
    """A group whose subcommands are imported only when used: `lazy` maps a name to "module:attr".

    A command's module (and whatever it imports) loads when the command runs or
    when `-h` lists it, so a command module keeps heavy imports (the daemon,
    the audit code) inside its functions.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        module, _, attr = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command), self.lazy[cmd_name]
        self.add_command(command, cmd_name)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except _NO_ARGS as e:  # a group given no command: its help, whole
            click.echo(e.ctx.get_help() if e.ctx is not None else e.format_message())
            sys.exit(e.exit_code)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except Exception as e:  # never a traceback for an operator; INTENT_LEDGER_DEBUG shows it
            if os.environ.get("INTENT_LEDGER_DEBUG"):
                raise
            _fail(f"unexpected failure: {_plain(e)} (INTENT_LEDGER_DEBUG=1 shows the details)", 1)
        sys.exit(0)


# click 8.2 and later say "no command" with this error; 8.1 printed the help itself.
_NO_ARGS: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _plain(e: BaseException) -> str:
    # What the error says, without links or library class names (those are for the debug trace).
    text = re.sub(r"\s*\(Background on this error at:[^)]*\)|https?://\S+", "", _one_line(str(e)))
    return re.sub(r"\(?\b[\w.]+(Error|Exception)\)?:?\s*", "", text).strip(" :;") or "no details"


if TYPE_CHECKING:
    _Param = click.ParamType[Any, Any]  # generic in the click we type-check against
else:
    _Param = click.ParamType  # and plain in older ones


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {_one_line(message)}", err=True)
    sys.exit(code)


class _Id(_Param):
    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_id(param.name if param and param.name else "id", value)
        except InvalidInput as e:
            self.fail(str(e), param, ctx)


class _Instant(_Param):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_instant(value, param.name if param and param.name else "instant")
        except InvalidInput as e:
            self.fail(str(e), param, ctx)


ID = _Id()
INSTANT = _Instant()


def ledger_of(
    ctx: click.Context, *, read_only: bool = False, or_empty: bool = False, existing: bool = False
) -> Ledger:
    """The ledger named by `--db`, opened once per invocation.

    `read_only=True` for commands that only read: a missing SQLite file is then
    an error naming it, never an empty ledger created on the spot (`or_empty`:
    an empty in-memory ledger instead, for a dry run against a ledger to come).
    `existing=True` for changes to what a ledger must hold already (remove, move,
    cancel a thing): a mistyped path is that error too, not a new empty file.
    """
    from ledger import Ledger
    from ledger.urls import parse_database_url

    root = ctx.find_root()
    if "ledger" not in root.meta:
        url = root.params["db"]
        parsed = parse_database_url(url)
        path = parsed.path
        if parsed.backend == "sqlite" and path is None:
            raise BadInput(
                f"--db {url}: an in-memory database keeps nothing once the command ends; "
                "give a file, e.g. sqlite:///intent-ledger.db"
            )
        if read_only and or_empty and path is not None and not path.exists():
            url, read_only = "sqlite://", False  # in memory: its tables are created, no file is
        root.meta["ledger"] = Ledger(url, create=not (read_only or existing))
        root.call_on_close(root.meta["ledger"].close)
    ledger: Ledger = root.meta["ledger"]
    return ledger


def view_of(ctx: click.Context) -> Ledger | LedgerView:
    """For commands that read aggregates only: a quick view of an SQLite file, else the ledger."""
    from ledger.quickread import open_view

    root = ctx.find_root()
    view = None if "ledger" in root.meta else open_view(root.params["db"])
    if view is None:
        return ledger_of(ctx, read_only=True)
    root.call_on_close(view.close)
    return view


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def change_options(f: F) -> F:
    """`--note` and `--actor`, on every command that changes the ledger."""
    f = click.option("--note", help="Free text kept with the change, for audits.")(f)
    return click.option("--actor", help="Who makes the change (default: the OS user).")(f)


def meta_of(actor: str | None, note: str | None, default: str | None = None) -> Meta:
    from ledger import Meta

    return Meta(actor or default or default_actor(), note)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def echo_table(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    rows = list(rows)
    if not rows:
        click.echo("(none)")
        return
    text = [[("-" if r.get(c) is None else str(r[c])) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for t in text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip())


def check_order(
    start: datetime | None, end: datetime | None, first: str = "--since", then: str = "--until"
) -> None:
    """Bad input naming both options unless `end` is after `start` (either may be left out)."""
    if start is not None and end is not None and end <= start:
        raise click.BadParameter(f"must be after {first}", param_hint=then)


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, plural but for one: "1 date", "2 dates" (`noun` takes an s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def report(receipt: Receipt, done: str) -> None:
    """One line about a change: what was appended, or that nothing had to be."""
    if receipt.appended:
        click.echo(f"{done} ({counted(receipt.appended, 'ledger event')} appended)")
    else:
        click.echo(f"{done}: nothing to append (already so)")


def warn_unknown_groups(receipt: Receipt, joined: Iterable[str | None] = ()) -> None:
    """A warning on stderr for each group this change named first, unless a client joins it.

    A group comes into being when first named, so a misspelt group is always a
    new one: the change stands, the operator hears about it.
    """
    members = set(joined)
    for e in receipt.events:
        group_id = getattr(e, "group_id", None)
        if type(e).__name__ == "GroupNamed" and group_id not in members:
            click.echo(f"Warning: group {group_id!r} has no registered member (check the spelling)", err=True)
