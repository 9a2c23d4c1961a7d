"""A worker's pay on the native API (session): ``GET /api/work/earnings``. The logic is in
``pay.view``."""

from __future__ import annotations

from typing import Any

from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, ClockDep, DbDep, SettingsDep
from steelyard.pay import view

#: Included by ``api.native.router`` (which adds the ``/api`` prefix).
worker = credential_router(Credential.SESSION, tags=["pay"])


@worker.get(
    "/work/earnings",
    summary="My earnings: rates, estimated time, my effective hourly, entries by type",
    description="For the signed-in worker, from the pay ledger plus their completed work not "
    "yet written to it (`pending_minor`, included in the figures): per "
    "project the piece rate (and hourly and review rates) in minor units of the currency, the "
    "estimated seconds per item (the median of the project's recent items), their items, active "
    "seconds, earnings and effective hourly; totals per entry type (piece_rate, bonus, "
    "minimum_top_up, adjustment, payout); per pay period their active time, earnings and "
    "top-up; their balance. Every amount is integer minor units (1500 is 15.00 USD).",
)
def my_earnings(
    actor: ActorDep, db: DbDep, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        return view.earnings(session, actor, settings, clock.now())
