"""The ``steelyard`` command."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from steelyard.cli.accounts import key_app, org_app, user_app
from steelyard.cli.pay import pay_app
from steelyard.clock import SYSTEM_CLOCK
from steelyard.config import load_settings
from steelyard.db.engine import Database

app = typer.Typer(
    help="Steelyard: self-hostable data labeling with a Scale-compatible API.", no_args_is_help=True
)
db_app = typer.Typer(help="Database maintenance.")
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(pay_app, name="pay")
console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    no_jobs: Annotated[
        bool, typer.Option("--no-jobs", help="Do not run the job runner in this process.")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (each serves requests; more cores).")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Migrate the database and serve the API (and, unless --no-jobs, run jobs)."""
    import os

    import uvicorn

    from steelyard.api.app import create_app
    from steelyard.api.server import uvicorn_options

    settings = load_settings()
    # Timeouts for slow clients, and forwarding headers only from STEELYARD_TRUSTED_PROXIES.
    options = uvicorn_options(settings)
    console.print(f"Steelyard on http://{host}:{port}  (Scale API: http://{host}:{port}/v1)")
    if workers > 1:
        # Migrate once here, so the worker processes do not race to do it.
        _database().dispose()
        if no_jobs:
            os.environ["STEELYARD_SERVE_NO_JOBS"] = "1"
        uvicorn.run(
            "steelyard.api.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            **options,
        )
        return
    application = create_app(settings, run_jobs=not no_jobs)
    uvicorn.run(application, host=host, port=port, log_level=log_level, **options)


@app.command()
def jobs() -> None:
    """Run the job runner (callbacks...) in this process until interrupted."""
    from steelyard.db.migrate import upgrade
    from steelyard.jobs.runner import JobRunner

    settings = load_settings()
    db = Database(settings.resolved_database_url)
    upgrade(db.engine)
    console.print("Job runner started; Ctrl+C stops it.")
    JobRunner(db, settings, clock=SYSTEM_CLOCK).run_forever()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from steelyard.db.migrate import upgrade

    settings = load_settings()
    db = Database(settings.resolved_database_url)
    upgrade(db.engine)
    db.dispose()
    console.print("Database is up to date.")


def _database() -> Database:
    from steelyard.db.migrate import upgrade

    settings = load_settings()
    db = Database(settings.resolved_database_url)
    upgrade(db.engine)
    return db


@app.command()
def demo(
    json_out: JsonFlag = False,
    host: Annotated[str, typer.Option(help="Host the server listens on (for the URLs).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port the server listens on (for the URLs).")] = 8080,
) -> None:
    """Create (or reuse) the demo organization, project and worker; print how to connect."""
    from steelyard.cli.demo import banner, seed_demo

    info = seed_demo(_database(), load_settings())
    typer.echo(json.dumps(info) if json_out else banner(info, host=host, port=port))


try:
    from steelyard.cli.aggregate import aggregate

    app.command("aggregate", help="Aggregate redundant labels from a CSV (worker,task,label).")(
        aggregate
    )
except ImportError:  # pragma: no cover - lands with the quality core
    pass


if __name__ == "__main__":
    app()
