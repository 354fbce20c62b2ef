"""The exceptions of condlock. Every one derives from :class:`LockError`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    from ._condlock import BlueprintLockStatus, LockInfo, MutexTag

    #: What holds a lock: a LockInfo (S3), a MutexTag or, when Apstra's own
    #: blueprint lock keeps it, a BlueprintLockStatus (Apstra). All three print
    #: as one line saying who holds it and since when.
    Holder = Union[LockInfo, MutexTag, BlueprintLockStatus]

__all__ = [
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
]


class LockError(Exception):
    """Base class of every condlock error. ``str(e)`` says what happened and
    what to do; it never contains a secret."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        """The message, as ``str(e)``."""
        return str(self.args[0]) if self.args else ""


class LockHeld(LockError):
    """The lock is held by someone else and the caller did not wait
    (``acquire(blocking=False)``). ``holder`` describes that holder (``None``
    when it could not be read): a :class:`LockInfo` for an S3 lock; for an
    Apstra mutex a :class:`MutexTag`, or a :class:`BlueprintLockStatus` when
    Apstra's own blueprint lock is what keeps it."""

    def __init__(self, message: str, *, holder: Optional["Holder"] = None) -> None:
        super().__init__(message)
        #: The current holder (S3: its lock info, with id, who, operation,
        #: info, created, etag...).
        self.holder = holder


class LockTimeout(LockError, TimeoutError):
    """The wait for the lock ran out (``acquire(timeout=...)``). Also a
    built-in :class:`TimeoutError`. ``holder`` is the last holder seen and
    ``waited`` the seconds waited."""

    def __init__(
        self,
        message: str,
        *,
        holder: Optional["Holder"] = None,
        waited: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        #: The last holder seen while waiting, if any.
        self.holder = holder
        #: How long we waited, in seconds.
        self.waited = waited


class LostReason(str):
    """Why a lock held with a lease was lost: a ``str`` equal to its
    :attr:`kind` (``"stolen"``, ``"gone"`` or ``"renewal_failed"``), with the
    details as attributes.

    - ``stolen``: a renewal found the lock overwritten by someone else
      (:attr:`holder` is the new holder, when it could be read).
    - ``gone``: the lock object was deleted (force-unlocked).
    - ``renewal_failed``: renewals kept failing until the lease's safety margin
      ran out (:attr:`message` has the last error); others may take it over.
    """

    message: str
    holder: Optional["LockInfo"]

    def __new__(
        cls, kind: str, *, message: str = "", holder: Optional["LockInfo"] = None
    ) -> "LostReason":
        self = super().__new__(cls, kind)
        self.message = message or kind
        self.holder = holder
        return self

    @property
    def kind(self) -> str:
        """``"stolen"``, ``"gone"`` or ``"renewal_failed"`` (a plain ``str``)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"LostReason({self.kind!r}, message={self.message!r}, holder={self.holder!r})"


class LockLost(LockError):
    """A lock we held is no longer ours. ``reason`` is one of ``"stolen"``,
    ``"gone"``, ``"renewal_failed"`` (a :class:`LostReason` when condlock raised
    it, with ``.message`` and, for ``"stolen"``, ``.holder``)."""

    def __init__(self, message: str, *, reason: str = "gone") -> None:
        super().__init__(message)
        #: Why the lock was lost.
        self.reason = reason


class NotOwned(LockError):
    """The lock belongs to someone else, so it was not touched (for example
    ``force_unlock`` with another lock's ID). ``holder`` is the current holder."""

    def __init__(self, message: str, *, holder: Optional["Holder"] = None) -> None:
        super().__init__(message)
        #: The current holder, if it could be read.
        self.holder = holder


class ConditionalWritesUnsupported(LockError):
    """The store ignores ``If-None-Match``: it cannot provide mutual exclusion.
    The lock condlock wrote to prove it was removed."""

    def __init__(self, message: str, *, endpoint: str = "", bucket: str = "") -> None:
        super().__init__(message)
        #: The store's endpoint (without credentials).
        self.endpoint = endpoint
        #: The bucket.
        self.bucket = bucket


class TransportError(LockError, OSError):
    """The store could not be reached (connection, TLS, timeouts) until the
    operation's deadline. Also an :class:`OSError`."""

    def __init__(self, message: str) -> None:
        LockError.__init__(self, message)


class ServerError(TransportError):
    """The store kept answering with server errors (5xx, throttling) until the
    deadline. ``status`` and ``code`` are the last HTTP status and S3 code."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        #: HTTP status.
        self.status = status
        #: S3 error code, e.g. ``SlowDown``.
        self.code = code


class RequestRejected(LockError):
    """The store refused a request for a reason retrying cannot fix."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        #: HTTP status.
        self.status = status
        #: S3 error code.
        self.code = code


class AccessDenied(RequestRejected, PermissionError):
    """The credentials were refused or lack permission (403). Also a
    :class:`PermissionError`."""

    def __init__(self, message: str, *, status: int = 403, code: str = "") -> None:
        RequestRejected.__init__(self, message, status=status, code=code)


class MalformedResponse(LockError):
    """The store answered something condlock cannot interpret."""


class InvalidConfiguration(LockError, ValueError):
    """A configuration value (or call argument) is invalid; ``field`` names
    it. Also a :class:`ValueError`."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        #: The offending parameter, e.g. ``"bucket"``.
        self.field = field
