"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""
from __future__ import annotations


class WhyrecError(Exception):
    """A problem with the user's input (registry, data, arguments): printed without a traceback."""

    exit_code = 2


class WhyrecWarning(UserWarning):
    """Input that is accepted but looks wrong (duplicate rows, mixed id spellings): the CLI
    prints it as one line, ``warning: ...``; a run records it in its manifest."""


class DataWarning(WhyrecWarning):
    """Data that is used as given although it is probably not what the user meant."""


class RegistryError(WhyrecError):
    """registry.toml is missing, malformed or names something that does not exist."""


class DataError(WhyrecError):
    """A data file, table or column is missing or holds values of the wrong kind."""


class PluginError(WhyrecError):
    """A plugin could not be loaded or registered a component that clashes with another."""


class UnsupportedError(WhyrecError):
    """A component was asked to work with something it does not support."""


class RunDirError(WhyrecError):
    """A directory is not a whyrec run, or lacks an artifact a command needs."""


class StorageError(WhyrecError):
    """The disk refused a write (full, read-only, over quota): nothing was written under the
    target's name; the message names the folder and how many bytes were needed."""

    exit_code = 1


def storage_error(exc: OSError, where: "str | object", needed: int | None = None, what: str = "the file") -> StorageError:
    """One line for an OSError of a write: ENOSPC as "no space left on <folder> (N bytes needed)"."""
    import errno

    size = f" ({needed:,} bytes needed)" if needed is not None else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"no space left on {where}{size}; {what} was not written: free space and run the command again")
    if exc.errno == errno.EROFS:
        return StorageError(f"{where} is on a read-only file system; {what} was not written: write somewhere else")
    return StorageError(f"cannot write {what} in {where} ({exc.strerror or exc}); nothing was written")


class StageError(WhyrecError):
    """A pipeline stage failed with an exception that is not a user error (a bug in the
    component's plugin, or in whyrec): named with its stage, plugin and run directory."""

    exit_code = 1
