"""``steelyard pay …``: the pay ledger's operator commands (``steelyard.pay``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from steelyard.cli.accounts import JsonFlag, OrgOption, _fail, _write
from steelyard.clock import SYSTEM_CLOCK

pay_app = typer.Typer(
    help="Pay: sweep completed work into the ledger, close pay periods, create payouts."
)
console = Console()


@pay_app.command("close-period")
def close_period(
    org: OrgOption,
    period: Annotated[
        str | None,
        typer.Option(
            help="ISO week to close (2026-W49). Default: the current week, closed as of now "
            "(work completed later counts in the next)."
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Close a pay period: pay its completed work and top each worker up to the hourly floor.
    Running it twice adds nothing."""
    from steelyard.accounts.service import get_organization_by_name
    from steelyard.cli.accounts import _database
    from steelyard.config import load_settings
    from steelyard.errors import SteelyardError
    from steelyard.pay.ledger import org_pay
    from steelyard.pay.periods import close_period as close
    from steelyard.pay.sweep import pending

    settings = load_settings()
    now = SYSTEM_CLOCK.now()
    try:
        # The unpaid work is read first, outside the write.
        with _database().unit_of_work(write=False) as session:
            org_id = get_organization_by_name(session, org).id
            swept = pending(session, org_id, org_pay(session, org_id, settings), now)
    except SteelyardError as exc:
        _fail(exc.message)

    def run(session: Session) -> dict[str, Any]:
        return close(session, org_id, settings, now, period, swept).to_doc()

    out = _write(run)
    if json_out:
        typer.echo(json.dumps(out))
        return
    table = Table(
        title=f"{org} {out['period']} (floor {out['floor_hourly_minor']} "
        f"{out['currency']} minor units an hour)"
    )
    for column in ("worker", "active h", "earned", "top-up", "effective/h"):
        table.add_column(column, justify="left" if column == "worker" else "right")
    for w in out["workers"]:
        table.add_row(
            w["email"],
            f"{w['active_seconds'] / 3600:.2f}",
            str(w["earned_minor"]),
            str(w["top_up_minor"]),
            str(w["effective_hourly_minor"]),
        )
    console.print(table)


@pay_app.command("sweep")
def sweep(org: OrgOption, json_out: JsonFlag = False) -> None:
    """Write piece-rate entries for completed work not yet in the ledger (idempotent)."""
    from steelyard.accounts.service import get_organization_by_name
    from steelyard.cli.accounts import _database
    from steelyard.config import load_settings
    from steelyard.errors import SteelyardError
    from steelyard.pay.ledger import org_pay, post
    from steelyard.pay.sweep import pending

    settings = load_settings()
    now = SYSTEM_CLOCK.now()
    try:
        # Read outside the write; ``post`` skips whatever another run wrote meanwhile.
        with _database().unit_of_work(write=False) as session:
            org_id = get_organization_by_name(session, org).id
            entries = pending(session, org_id, org_pay(session, org_id, settings), now)
    except SteelyardError as exc:
        _fail(exc.message)

    def run(session: Session) -> dict[str, Any]:
        return {"entries": post(session, org_id, entries, now)}

    out = _write(run)
    typer.echo(json.dumps(out) if json_out else f"{out['entries']} entries written.")


@pay_app.command("payouts")
def payouts(
    org: OrgOption,
    period: Annotated[str, typer.Option(help="The closed period to pay (2026-W49) and before.")],
    out: Annotated[
        Path | None, typer.Option(help="Write the CSV (worker, amount, currency, reference) here.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Create the payout batch of a closed period: payout entries zero the balances they pay.
    Running it twice adds nothing (and writes the same CSV)."""
    from steelyard.accounts.service import get_organization_by_name
    from steelyard.pay.payouts import CSV_HEADER, create_payouts

    def run(session: Session) -> list[Any]:
        org_id = get_organization_by_name(session, org).id
        return create_payouts(session, org_id, period, SYSTEM_CLOCK.now())

    made = _write(run)
    if out is not None:
        with out.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_HEADER)
            writer.writerows(p.csv_row() for p in made)
    rows = [dict(zip(CSV_HEADER, p.csv_row(), strict=True)) for p in made]
    if json_out:
        typer.echo(json.dumps({"period": period, "payouts": rows}))
        return
    console.print(f"{len(rows)} payouts for {period}" + (f" written to {out}" if out else ""))


@pay_app.command("settings")
def org_settings(
    org: OrgOption,
    currency: Annotated[
        str | None, typer.Option(help="The organization's currency (ISO 4217, e.g. EUR).")
    ] = None,
    min_hourly: Annotated[
        str | None,
        typer.Option(
            help="The organization's hourly floor in major units (16.50); only higher than "
            "STEELYARD_MIN_HOURLY_WAGE."
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show, or set, an organization's pay currency and hourly floor."""
    from steelyard.accounts.service import get_organization_by_name
    from steelyard.config import load_settings
    from steelyard.pay.ledger import org_pay, set_org_pay
    from steelyard.projects.pay_settings import currency_code, to_minor

    settings = load_settings()

    def run(session: Session) -> dict[str, Any]:
        org_id = get_organization_by_name(session, org).id
        if currency is None and min_hourly is None:
            now = org_pay(session, org_id, settings)
        else:
            in_currency = currency_code(currency, "currency") if currency else None
            unit = in_currency or org_pay(session, org_id, settings).currency
            floor = to_minor(min_hourly, unit) if min_hourly is not None else None
            now = set_org_pay(session, org_id, settings, currency=in_currency, floor_minor=floor)
        return {"org": org, "currency": now.currency, "min_hourly_minor": now.floor_minor}

    out = _write(run)
    typer.echo(
        json.dumps(out)
        if json_out
        else f"{org}: {out['currency']}, floor {out['min_hourly_minor']} minor units an hour"
    )
