"""Files are written whole or not at all (a temporary name beside the target, then rename); where a file will go
is checked before any work (:func:`check_output`); files are fingerprinted by SHA-256."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import tempfile
import threading
from pathlib import Path

from brw.errors import BrwError, clip


#: Memory that parsing one byte of a text input may take (Python objects for its numbers and strings).
PARSE_BYTES_PER_BYTE = 16


def is_file(text) -> bool:
    """Whether ``text`` names an existing file (False, not an error, for a name no file can have)."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        return False


def read_text(path, what: str) -> str:
    """The text (UTF-8) of a small input file: a config, a table, a list. A file whose parse could not fit in
    memory is refused before it is read.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What it is, for the message (``cost table``).

    Returns
    -------
    str
        Its text.

    Raises
    ------
    BrwError
        When it cannot be read, is not UTF-8, or is too large.
    """
    from brw.limits import USABLE, available_memory, format_bytes

    try:
        size = os.stat(path).st_size
        have = available_memory()
        if size * PARSE_BYTES_PER_BYTE > USABLE * have:
            raise BrwError(f"{what} {clip(str(path), 120)} holds {format_bytes(size)}; reading it needs about "
                           f"{format_bytes(size * PARSE_BYTES_PER_BYTE)} of memory but {format_bytes(have)} is "
                           f"available (at most {format_bytes(USABLE * have / PARSE_BYTES_PER_BYTE)} fits)")
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError, ValueError) as e:
        if isinstance(e, BrwError):
            raise
        reason = e.strerror if isinstance(e, OSError) and e.strerror else clip(str(e), 100)
        raise BrwError(f"cannot read {what} {clip(str(path), 120)}: {reason}") from None


@contextlib.contextmanager
def atomic_path(path, suffix: str = "", *, fsync: bool = True):
    """Yield a temporary path in the target's folder; on success it is renamed onto ``path``, on any error it
    is removed and ``path`` is untouched. ``suffix`` keeps writers that append extensions (numpy) honest.
    ``fsync=False`` skips flushing the data to disk before the rename (milliseconds): the file is still whole
    or absent when a process dies, but a power cut may leave it empty, so its reader must treat a file it
    cannot parse as absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exit_on_signals():  # SIGTERM while writing: the temporary file goes too
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
        try:
            os.close(fd)
            yield Path(tmp)
            if fsync:
                with open(tmp, "rb+") as f:  # on disk before it takes the name
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the file should look like any other
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def check_output(path, suffix: str, *, name: str = "out", exist_ok: bool = False) -> Path:
    """Check, before any work, that a data file can be written at ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written.
    suffix : str
        The suffix it must end in, e.g. ".npz".
    name : str, optional
        What the caller calls the path (its parameter name), for the error message.
    exist_ok : bool, optional
        An existing file is fine (a resumable run); otherwise it is an error, so that nothing is overwritten.

    Returns
    -------
    pathlib.Path
        ``path`` as a Path.

    Raises
    ------
    BrwError
        If the suffix differs, the path is a folder, the folder does not exist or takes no new files (tried with
        an unnamed file, which leaves nothing behind: root passes permission checks that /sys still refuses),
        or the file exists and ``exist_ok`` is false.
    """
    text = os.fspath(path)
    path = Path(text)
    shown = clip(text, 120)
    if path.suffix != suffix or text.endswith(("/", os.sep)):
        raise BrwError(f"{name} {shown} must end in {suffix}")
    if path.is_dir():
        raise BrwError(f"{name} {shown} is a folder; give a file name ending in {suffix}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BrwError(f"{name} {shown}: folder {clip(str(folder), 120)} does not exist")
    if not exist_ok and path.exists():
        raise BrwError(f"{name} {shown} already exists; remove it or write to another file")
    check_writable(folder, f"{name} {shown}")
    return path


def check_writable(folder, what: str) -> None:
    """Refuse a folder this process cannot create files in, leaving nothing behind (an unnamed file).

    Parameters
    ----------
    folder : str or os.PathLike
        An existing folder.
    what : str
        What is to be written there, for the message.

    Raises
    ------
    BrwError
        When no file can be created in it.
    """
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise BrwError(f"{what}: cannot create files in {clip(str(folder), 120)} ({e.strerror})") from None


def write_npz(path, arrays: dict, *, compressed: bool = True) -> None:
    """A NumPy archive of plain arrays (never objects), whole or not at all."""
    import numpy as np  # here: the package's file helpers load without numpy

    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def hash_file(h, path):
    """Feed the bytes of the file at ``path`` into the hash object ``h``, in blocks of 4 MiB.

    Parameters
    ----------
    h : hashlib hash object
        Updated in place.
    path : str or Path
        The file to read.

    Returns
    -------
    hashlib hash object
        ``h`` itself.
    """
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h


def sha256(path) -> str:
    """The SHA-256 of a file's bytes.

    Parameters
    ----------
    path : str or Path
        The file to read.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    return hash_file(hashlib.sha256(), path).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _exit(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def exit_on_signals():
    """Inside the block, SIGTERM and SIGHUP raise SystemExit (status 128 + the signal) where they would kill the
    process at once, so that ``finally`` blocks run and a half-written file is removed. Handlers that someone
    else installed are left alone; outside the main thread (where signals cannot be handled) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _exit)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
