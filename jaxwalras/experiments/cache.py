"""JAX's persistent compilation cache for the command line and the experiment runner.

Compiled XLA executables are written to a folder and reused by later processes, so a
second run of a study (or the second process of a distributed run on the same
filesystem) does not compile again.  The folder is, in order of precedence:

1. the ``path`` argument (``jaxwalras experiment --compilation-cache DIR``);
2. the environment variable ``JAXWALRAS_CACHE_DIR``;
3. ``jaxwalras/jax-compilation-cache`` under the user's cache directory
   (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
   ``%LOCALAPPDATA%`` on Windows).

``"off"`` (argument or variable; also ``0``, ``false``, ``none``) switches it off.  If the
user already set ``jax_compilation_cache_dir``, that setting is left alone.  The cache is
switched on only inside :func:`compilation_cache` (a context manager: the previous JAX
settings come back when it exits); importing :mod:`jaxwalras` changes no JAX setting.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

__all__ = ["compilation_cache", "default_cache_dir", "resolve_cache_dir", "OFF_VALUES"]

#: values that switch the cache off
OFF_VALUES = ("off", "0", "false", "no", "none")
#: executables that compiled faster than this are not written (JAX's default is 1 s,
#: which would skip most of this library's kernels on a CPU)
MIN_COMPILE_SECONDS = 0.2


def default_cache_dir() -> str:
    """The default folder (see the module docstring).

    Examples
    --------
    >>> from jaxwalras.experiments.cache import default_cache_dir
    >>> default_cache_dir().endswith("jax-compilation-cache")
    True
    """
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "jaxwalras", "jax-compilation-cache")


def resolve_cache_dir(path: str | None = None) -> str | None:
    """The cache folder to use, or ``None`` when switched off."""
    val = path if path is not None else os.environ.get("JAXWALRAS_CACHE_DIR")
    if val is None or val == "":
        return default_cache_dir()
    if str(val).strip().lower() in OFF_VALUES:
        return None
    return os.path.abspath(os.path.expanduser(str(val)))


@contextlib.contextmanager
def compilation_cache(path: str | None = None) -> Iterator[str | None]:
    """Use JAX's persistent compilation cache inside the ``with`` block.

    Yields the folder in use (``None`` when off, or JAX's own folder when the user set
    one).  A folder that cannot be created switches the cache off with a warning on
    stderr rather than failing the run.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc
    own = getattr(jax.config, "jax_compilation_cache_dir")
    if own:
        yield own
        return
    folder = resolve_cache_dir(path)
    if folder is None:
        yield None
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        sys.stderr.write(f"warning: compilation cache {folder}: {exc.strerror}; "
                         "compiling without it\n")
        yield None
        return
    old_min = getattr(jax.config, "jax_persistent_cache_min_compile_time_secs")
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    cc.reset_cache()              # take effect even if this process compiled before
    try:
        yield folder
    finally:
        jax.config.update("jax_compilation_cache_dir", own)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", old_min)
        cc.reset_cache()
