"""Exceptions raised by shardvec, named like shardyfusion's.

Every exception is a :class:`ShardvecError` and carries ``code`` (the
library's stable error code, e.g. ``"backend"``, ``"invalid_query"``) and
``kind`` (``invalid_input``, ``not_found``, ``conflict``, ``unavailable``,
``timeout``, ``upstream``, ``corrupt``, ``unsupported``, ``internal``).
"""


class ShardvecError(Exception):
    """Base class of every shardvec error."""

    code: str = "internal"
    kind: str = "internal"


class ConfigValidationError(ShardvecError, ValueError):
    """The caller's input or options are wrong: a query of the wrong
    dimension or with NaN, ``top_k`` 0, an unknown shard id, a malformed
    filter or routing context, a bad option. Retrying fails the same way."""


class ReaderStateError(ShardvecError):
    """The reader is closed (or was used from the wrong context)."""


class ManifestParseError(ShardvecError):
    """The snapshot's manifest, ``_CURRENT`` or a routing artefact does not
    parse or does not agree with itself."""


class DbAdapterError(ShardvecError):
    """A shard could not be opened or searched: a missing or damaged shard
    object, a backend that is not compiled in, the local cache."""


class SnapshotNotFoundError(ShardvecError, LookupError):
    """Nothing is published at the prefix, or an object is missing."""


class ConflictError(ShardvecError):
    """The call raced a change (a pinned manifest no longer served, a
    newer publish)."""


class ObjectStoreError(ShardvecError, OSError):
    """The object store failed (connection error, 5xx) after retries."""


class ShardvecTimeoutError(ShardvecError, TimeoutError):
    """The call ran past its time limit."""


__all__ = [
    "ShardvecError",
    "ConfigValidationError",
    "ReaderStateError",
    "ManifestParseError",
    "DbAdapterError",
    "SnapshotNotFoundError",
    "ConflictError",
    "ObjectStoreError",
    "ShardvecTimeoutError",
]
