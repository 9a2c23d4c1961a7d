"""Running a unit of work from an ``async`` handler without needless thread hops.

A plain ``def`` handler runs in the thread pool. On SQLite that buys nothing for a short write:
writers take turns on one lock and Python runs one thread at a time, so eight requests in eight
threads only add hand-offs of the GIL and of the lock between them (measured: about a third of
the server's time under eight concurrent creates, and most of the tail). Worse, a thread that
holds the write lock waits for the GIL behind the event loop, so every writer behind it queues.

So on SQLite ``write`` runs the work on the event loop. When another writer (the job runner, a
plain handler, another process) holds the database, a pool thread waits for the lock and the
work still runs on the loop once it is ours. On PostgreSQL a transaction waits on the network
and writers run in parallel, so the whole unit of work goes to the thread pool.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import anyio
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from steelyard.db.engine import Database

P = ParamSpec("P")
T = TypeVar("T")


async def write(
    db: Database, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``fn(session, *args, **kwargs)`` in one write transaction; see the module docstring.

    ``fn`` must be short and must wait on nothing but the database (no DNS, no HTTP).
    """
    if not db.is_sqlite:

        def in_thread() -> T:
            with db.unit_of_work() as session:
                return fn(session, *args, **kwargs)

        return await run_in_threadpool(in_thread)
    # Writers on this loop queue here first, so that only one of them at a time holds or
    # waits for the write lock: a lock taken by a pool thread for one request must not make
    # the requests behind it think another writer is busy and go to threads themselves.
    async with _loop_writers(db):
        unit = db.claim_writer(wait=False)
        if unit is None:
            # Shielded: a cancellation between the thread taking the lock and this task
            # using it would leave the lock held forever.
            with anyio.CancelScope(shield=True):
                unit = await run_in_threadpool(db.claim_writer)
        assert unit is not None
        with unit as session:
            result = fn(session, *args, **kwargs)
        # Hold the queue through one turn of the loop, which reads the sockets. Without it a
        # whole queue of writes ran in one turn, and a client whose answer went out last sent
        # its next request after the loop had looked: it waited a full extra round every time
        # (two of eight clients at twice the latency). Now writes are served in arrival order.
        await asyncio.sleep(0)
        return result


#: One queue per event loop and database (an asyncio lock belongs to the loop it waits on).
_writers: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Database, asyncio.Lock]
] = weakref.WeakKeyDictionary()


def _loop_writers(db: Database) -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    locks = _writers.get(loop)
    if locks is None:
        locks = _writers[loop] = weakref.WeakKeyDictionary()
    lock = locks.get(db)
    if lock is None:
        lock = locks[db] = asyncio.Lock()
    return lock
