"""Exceptions and warnings raised by affectflow.

Every error a user can cause (a bad config, path or corpus) is an :class:`AffectflowError`; the CLI prints its
message as one paragraph instead of a traceback. Messages say what was found and what was expected.
"""


class AffectflowError(Exception):
    """Base class of all errors a user can cause and fix."""


class ConfigError(AffectflowError, ValueError):
    """A configuration value or key is invalid."""


class CorpusError(AffectflowError, ValueError):
    """A corpus on disk is missing, incomplete or inconsistent."""


class ImportFormatError(AffectflowError, ValueError):
    """Files being imported do not follow the expected layout (the message lists files and counts)."""


class RunError(AffectflowError, ValueError):
    """A run directory is missing, incomplete, or would be overwritten."""


class ExecutionError(AffectflowError, RuntimeError):
    """A worker process died before returning its job's result (killed, out of memory); the message names the job."""


class ExtractionError(Exception):
    """A recording's file is corrupt, truncated, empty or unsupported (the message names the file).

    Raised by the readers in :mod:`affectflow.io` and by the extractors; the extraction pipeline records it as a
    failed job. (Also importable from :mod:`affectflow.features.base`, where it used to live.)
    """


class AffectflowWarning(UserWarning):
    """A recoverable data problem (missing frames, dropped duplicates...), with counts in the message."""
