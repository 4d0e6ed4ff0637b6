"""Shared pieces of the command line: the root group, error handling, options, output."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import click
from eventsourcing.persistence import PersistenceError

from ledger import Ledger, Meta, Receipt
from ledger.errors import InvalidInput, LedgerError
from ledger.values import check_id, parse_instant

__all__ = [
    "ID",
    "INSTANT",
    "LedgerGroup",
    "change_options",
    "echo_json",
    "echo_table",
    "json_option",
    "ledger_of",
    "report",
]

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class BadInput(click.ClickException):
    exit_code = 2


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class LedgerGroup(click.Group):
    """A click group whose errors are one line on stderr: exit 2 bad input, 1 failure."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInput as e:
            raise BadInput(str(e)) from None
        except (LedgerError, PersistenceError, OSError) as e:
            raise click.ClickException(_one_line(str(e)) or type(e).__name__) from None

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
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except Exception as e:  # never a traceback for an operator; INTENT_LEDGER_DEBUG shows it
            if os.environ.get("INTENT_LEDGER_DEBUG"):
                raise
            _fail(f"{type(e).__name__}: {_one_line(str(e))}", 1)
        sys.exit(0)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {_one_line(message)}", err=True)
    sys.exit(code)


class _Id(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.2
    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_id(param.name if param and param.name else "id", value)
        except InvalidInput as e:
            self.fail(str(e), param, ctx)


class _Instant(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.2
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


def ledger_of(ctx: click.Context) -> Ledger:
    """The ledger named by `--db`, opened once per invocation."""
    root = ctx.find_root()
    if "ledger" not in root.meta:
        root.meta["ledger"] = Ledger(root.params["db"])
        root.call_on_close(root.meta["ledger"].close)
    ledger: Ledger = root.meta["ledger"]
    return ledger


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


def report(receipt: Receipt, done: str) -> None:
    """One line about a change: what was appended, or that nothing had to be."""
    if receipt.appended:
        click.echo(f"{done} ({receipt.appended} ledger events appended)")
    else:
        click.echo(f"{done}: nothing to append (already so)")
