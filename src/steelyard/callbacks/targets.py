"""A callback target, made ready before the request opens its write transaction.

``prepare`` is what every edge that accepts a ``callback_url`` or batch ``callback`` awaits
first (task create, v1 and v2 batch create), with the app's settings. It does the things the
service cannot do inside the transaction (the service checks only the target's form):

- it refuses an email target when this server sends no email (``STEELYARD_SMTP_URL`` unset),
  instead of accepting it and failing every delivery;
- it looks the URL's host up, in a small pool of threads of its own, for at most
  ``LOOKUP_WAIT_SECONDS``. The answer lands in ``urls``' cache, where the service's check (which
  never resolves) then finds it, so a name that resolves to a private address is refused with
  a 400. A name that has not answered by then is accepted: the lookup goes on in the
  background, and the callback is checked again when it is sent (refused there for good if it
  points somewhere private). A host that never answers DNS thus costs its own request at most
  ``LOOKUP_WAIT_SECONDS``, and nobody else anything;
- it judges the address by the app's ``urls.TargetPolicy`` (private ones only where
  ``STEELYARD_ALLOW_PRIVATE_CALLBACKS`` is set).

Lookups of one host are shared; they run on a few threads of their own, so names that never
answer cannot take the server's request threads, and at most ``MAX_PENDING`` lookups queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from concurrent.futures import Future

from steelyard.callbacks import urls
from steelyard.config import Settings
from steelyard.errors import ValidationError

#: How long a request waits for its callback host's DNS answer.
LOOKUP_WAIT_SECONDS = 2.0
#: Lookups queued or running at once; past that a new name is not looked up at create.
MAX_PENDING = 256

#: Threads that do the lookups. Daemon threads, unlike a ThreadPoolExecutor's: a process that
#: stops must not first wait for lookups of names that never answer.
LOOKUP_THREADS = 4

_queue: queue.SimpleQueue[tuple[Future[list[str]], str, int]] = queue.SimpleQueue()
_threads: list[threading.Thread] = []
_pending: dict[tuple[str, int], Future[list[str]]] = {}
_pending_lock = threading.Lock()


async def prepare(target: object, *, field: str, settings: Settings) -> None:
    """Check ``target`` (the raw body value; anything but a non-empty string is left to the
    service's validation) and resolve its host first; see the module docstring. ``settings``
    are the app's: its SMTP server and its ``TargetPolicy``."""
    if not isinstance(target, str) or not target:
        return
    if urls.is_email(target):
        if not settings.smtp_url:
            raise ValidationError(
                f"'{field}' is an email address, but this server sends no email "
                "(STEELYARD_SMTP_URL is not set); give an http(s) URL.",
                field=field,
            )
        return
    policy = urls.TargetPolicy.of(settings)
    key = urls.lookup_needed(target, policy=policy)
    if key is not None:
        future = _start_lookup(*key)
        if future is not None:
            await _wait(future, LOOKUP_WAIT_SECONDS)
    urls.check_callback_target(target, field=field, policy=policy)


def _start_lookup(host: str, port: int) -> Future[list[str]] | None:
    key = (host.lower(), port)
    with _pending_lock:
        future = _pending.get(key)
        if future is not None:
            return future
        if len(_pending) >= MAX_PENDING:
            return None
        future = Future()
        _pending[key] = future
        # Alive ones only: threads do not survive a fork.
        _threads[:] = [t for t in _threads if t.is_alive()]
        if len(_threads) < LOOKUP_THREADS:
            thread = threading.Thread(target=_look_up_forever, name="steelyard-dns", daemon=True)
            _threads.append(thread)
            thread.start()
    _queue.put((future, host, port))

    def forget(_: Future[list[str]]) -> None:
        with _pending_lock:
            if _pending.get(key) is future:
                del _pending[key]

    future.add_done_callback(forget)
    return future


def _look_up_forever() -> None:
    while True:
        future, host, port = _queue.get()
        try:
            future.set_result(urls.resolve_host(host, port))
        except BaseException as exc:  # resolve_host catches DNS errors; anything else is a bug
            future.set_exception(exc)


async def _wait(future: Future[list[str]], timeout: float) -> None:
    """Until ``future`` is done or ``timeout`` passes, whichever is first; never cancels it."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def wake(_: Future[list[str]]) -> None:
        # RuntimeError: that event loop has closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(done.set)

    future.add_done_callback(wake)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout)
