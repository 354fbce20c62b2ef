"""condlock: distributed locks on conditional writes.

:class:`S3Lock` takes the same lock file Terraform's S3 backend takes
(``<key>.tflock``, ``If-None-Match: *``), so scripts and Terraform exclude each
other::

    from condlock import S3Lock

    lock = S3Lock(bucket="tfstate", key="envs/dev/terraform.tfstate", region="us-east-1")
    with lock:
        ...  # nobody else (Terraform included) holds the state lock here

:class:`ApstraMutex` takes the Apstra blueprint mutex the Apstra Terraform
provider takes (the design tag ``blueprint <ID> locked``)::

    from condlock import ApstraMutex

    with ApstraMutex("801a43ec-96ea-4f08-aa04-1f1faaeeeaf1", message="deploying"):
        ...  # the server comes from APSTRA_URL, APSTRA_USER and APSTRA_PASS

The ``threading.Lock`` habit works too (``lock.acquire(timeout=5)`` ...
``lock.release()``, ``lock.locked()``), and so do decorators (``@lock``,
``@lock(timeout=5)``, on functions and coroutine functions). Locks are not
re-entrant: a second acquisition by the holding thread or task that would
wait for itself raises :class:`LockError` at once. What the process still holds at interpreter exit
is released with a warning; :func:`release_on_sigterm` does the same on
SIGTERM.

Diagnostics go to the ``logging`` logger ``condlock`` (the first wait of an
acquisition at INFO, like Terraform's "Acquiring state lock"; retries,
fallbacks); ``on_wait=`` callbacks get each wait as a :class:`WaitEvent`.
Secrets never appear there, nor in any ``repr`` or exception message.
"""

from ._condlock import LockInfo, WaitEvent, __version__
from ._errors import (
    AccessDenied,
    ConditionalWritesUnsupported,
    InvalidConfiguration,
    LockError,
    LockHeld,
    LockLost,
    LockTimeout,
    LostReason,
    MalformedResponse,
    NotOwned,
    RequestRejected,
    ServerError,
    TransportError,
)
from ._lock_base import EXIT_RELEASE_TIMEOUT, release_on_sigterm
from ._s3 import AsyncTransport, HeldLock, S3Lock, SyncTransport
from ._apstra import ApstraClient, ApstraMutex, BlueprintLockStatus, HeldMutex, MutexTag

__all__ = [
    "__version__",
    "S3Lock",
    "HeldLock",
    "Lease",
    "LockInfo",
    "WaitEvent",
    "EXIT_RELEASE_TIMEOUT",
    "release_on_sigterm",
    "SyncTransport",
    "AsyncTransport",
    "LockError",
    "LockHeld",
    "LockTimeout",
    "LockLost",
    "LostReason",
    "NotOwned",
    "ConditionalWritesUnsupported",
    "TransportError",
    "ServerError",
    "RequestRejected",
    "AccessDenied",
    "MalformedResponse",
    "InvalidConfiguration",
    "ApstraMutex",
    "HeldMutex",
    "ApstraLease",
    "ApstraClient",
    "MutexTag",
    "BlueprintLockStatus",
]

# Old names, kept working: `Lease` meant any held S3 lock (held with a lease
# or not), `ApstraLease` a held Apstra mutex (which has no lease).
_DEPRECATED = {"Lease": ("HeldLock", HeldLock), "ApstraLease": ("HeldMutex", HeldMutex)}


def __getattr__(name: str):
    """Deprecated aliases: ``Lease`` is :class:`HeldLock`, ``ApstraLease``
    is :class:`HeldMutex`."""
    if name in _DEPRECATED:
        import warnings

        new, cls = _DEPRECATED[name]
        warnings.warn(
            f"condlock.{name} is deprecated: use condlock.{new} (a held lock is not a lease)",
            DeprecationWarning,
            stacklevel=2,
        )
        return cls
    raise AttributeError(f"module 'condlock' has no attribute {name!r}")
