"""Backends by name: the built-ins plus whatever installed packages register under an entry-point group.

A third-party package adds a backend the way pytest plugins add themselves under ``pytest11``: one
line in its own ``pyproject.toml``::

    [project.entry-points."pytest_trtbench.backends"]
    mybackend = "my_package.backend:MyBackend"

The value names a zero-argument callable (usually the class) returning a
:class:`~pytest_trtbench.backends.base.Backend`; its module is imported only when that backend is
used. ``--trt-backend`` and ``Suite(backends=...)`` are validated against :func:`backend_names`.

The built-ins are in :data:`BUILTIN` as well as in our own entry points, so a checkout whose
installed metadata predates the entry points still finds them; a third-party entry point may not
reuse a built-in's name.
"""
from __future__ import annotations

import functools
import importlib
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pytest_trtbench.backends.base import Backend

ENTRY_POINT_GROUP = "pytest_trtbench.backends"
BUILTIN = {
    "onnxruntime": "pytest_trtbench.backends.onnxruntime:OnnxRuntimeBackend",
    "tensorrt": "pytest_trtbench.backends.tensorrt:TensorRTBackend",
}
"""Name -> ``module:attribute`` of the backends that ship with the package."""


class BackendRegistryError(ValueError):
    """An unknown backend name, or an entry point that can't be loaded; the message says which and the fix."""


def backend_names() -> tuple[str, ...]:
    """Every usable backend name: the built-ins, then third-party entry points in name order."""
    return (*BUILTIN, *sorted(_third_party()))


def get_backend(name: str) -> Backend:
    """A new instance of the backend called *name*; heavy imports happen inside its methods."""
    third_party = _third_party()  # raises if one shadows a built-in, whichever name is asked for
    target = BUILTIN.get(name) or third_party.get(name)
    if target is None:
        raise BackendRegistryError(unknown_backend_message(name))
    factory = _load(target)
    try:
        backend = factory()
    except Exception as exc:  # the third party's constructor: name the backend and its entry point
        raise BackendRegistryError(
            f"backend {name!r} ({target}) could not be made: {type(exc).__name__}: {exc}") from None
    if getattr(backend, "name", None) != name:
        raise BackendRegistryError(
            f"backend {name!r} ({target}) made an object whose .name is {getattr(backend, 'name', None)!r}; "
            f"it must be {name!r} (the cache directory and the reports use it)"
        )
    return backend  # type: ignore[no-any-return]


def unknown_backend_message(name: str) -> str:
    return (
        f"unknown backend {name!r}; available: {', '.join(backend_names())} (a third-party backend registers "
        f"under the entry-point group {ENTRY_POINT_GROUP!r}: see docs/architecture.md)"
    )


def _third_party() -> dict[str, str]:
    """Entry points of other distributions: name -> ``module:attribute``. Re-read when ``sys.path`` changes."""
    return _entry_points(tuple(sys.path))


@functools.lru_cache(maxsize=8)
def _entry_points(path: tuple[str, ...]) -> dict[str, str]:
    from importlib.metadata import entry_points

    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTIN:
            if ep.value.replace(" ", "") != BUILTIN[ep.name]:
                dist = getattr(getattr(ep, "dist", None), "name", "?")
                raise BackendRegistryError(
                    f"entry point {ep.name} = {ep.value} (distribution {dist}) in group {ENTRY_POINT_GROUP!r} "
                    f"reuses the name of a built-in backend; give it another name"
                )
            continue
        found.setdefault(ep.name, ep.value)
    return found


@functools.lru_cache(maxsize=32)
def _load(target: str) -> Callable[[], Any]:
    module_name, _, attribute = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name.strip())
        for part in attribute.strip().split(".") if attribute.strip() else []:
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise BackendRegistryError(f"cannot load backend {target}: {type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise BackendRegistryError(f"backend {target} is not callable; name a class or a zero-argument factory")
    return obj  # type: ignore[no-any-return]
