"""The ``steelyard`` command."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from steelyard.clock import SYSTEM_CLOCK
from steelyard.config import load_settings
from steelyard.db.engine import Database

app = typer.Typer(
    help="Steelyard: self-hostable data labeling with a Scale-compatible API.", no_args_is_help=True
)
db_app = typer.Typer(help="Database maintenance.")
org_app = typer.Typer(help="Organizations.")
user_app = typer.Typer(help="Users.")
key_app = typer.Typer(help="API keys.")
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
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

    settings = load_settings()
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
            proxy_headers=True,
        )
        return
    application = create_app(settings, run_jobs=not no_jobs)
    uvicorn.run(application, host=host, port=port, log_level=log_level, proxy_headers=True)


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


@org_app.command("create")
def org_create(name: str, json_out: JsonFlag = False) -> None:
    """Create an organization with a live and a test API key (shown once)."""
    from steelyard.accounts import service
    from steelyard.errors import SteelyardError

    db = _database()
    try:
        with db.unit_of_work() as session:
            created = service.create_organization(session, name)
            out = {
                "org": created.org.name,
                "org_id": created.org.id,
                "live_api_key": created.live_api_key,
                "test_api_key": created.test_api_key,
                "callback_auth_key": created.org.callback_auth_key,
            }
    except SteelyardError as exc:
        _fail(exc.message)
    if json_out:
        typer.echo(json.dumps(out))
    else:
        for k, v in out.items():
            typer.echo(f"{k}: {v}")


@user_app.command("create")
def user_create(
    org: Annotated[str, typer.Option(help="Organization name.")],
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option()],
    role: Annotated[
        str, typer.Option(help="owner, admin, manager, reviewer or annotator.")
    ] = "annotator",
    json_out: JsonFlag = False,
) -> None:
    """Create a user (or add an existing one) in an organization."""
    from steelyard.accounts import service
    from steelyard.errors import SteelyardError

    db = _database()
    try:
        with db.unit_of_work() as session:
            organization = service.get_organization_by_name(session, org)
            user = service.create_user(
                session, org_id=organization.id, email=email, password=password, role=role
            )
            out = {"user_id": user.id, "email": user.email, "org": organization.name, "role": role}
    except SteelyardError as exc:
        _fail(exc.message)
    typer.echo(json.dumps(out) if json_out else f"Created {out['email']} ({role}) in {org}.")


@key_app.command("create")
def key_create(
    org: Annotated[str, typer.Option(help="Organization name.")],
    test: Annotated[bool, typer.Option("--test", help="A test-environment key.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Create another API key for an organization (shown once)."""
    from steelyard.accounts import service
    from steelyard.errors import SteelyardError

    db = _database()
    try:
        with db.unit_of_work() as session:
            organization = service.get_organization_by_name(session, org)
            key = service.create_api_key(session, organization.id, is_test=test)
    except SteelyardError as exc:
        _fail(exc.message)
    out = {"org": org, "api_key": key, "environment": "test" if test else "live"}
    typer.echo(json.dumps(out) if json_out else key)


@app.command()
def demo(
    json_out: JsonFlag = False,
) -> None:
    """Create (or reuse) the demo organization, project and worker; print how to connect."""
    from steelyard.cli.demo import seed_demo

    info = seed_demo(_database(), load_settings())
    if json_out:
        typer.echo(json.dumps(info))
        return
    typer.echo("")
    typer.echo("Steelyard demo organization ready:")
    typer.echo(f"  live API key : {info['live_api_key']}")
    typer.echo(f"  test API key : {info['test_api_key']}")
    typer.echo(f"  worker login : {info['worker_email']} / {info['worker_password']}")
    typer.echo(
        '  connect      : scaleapi.ScaleClient(KEY, api_instance_url="http://127.0.0.1:8080/v1")'
    )
    typer.echo("")


try:
    from steelyard.cli.aggregate import aggregate

    app.command("aggregate", help="Aggregate redundant labels from a CSV (worker,task,label).")(
        aggregate
    )
except ImportError:  # pragma: no cover - lands with the quality core
    pass


if __name__ == "__main__":
    app()
