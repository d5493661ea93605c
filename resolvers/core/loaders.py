"""Per-request DataLoaders, for relations a page does not preload.

Pages load their rows and every relation they show in their connection resolver (see
resolvers/applications/queries.py), and the viewer comes with its registration; a DataLoader
is left only where a relation is rare (a sub-ID's ``generatedBy``, an application's goods
lines), so that asking for it costs one statement per kind, not one per object, and not
asking costs nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from resolvers.core.context import Context

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def loader(ctx: Context, name: str, batch: Callable[[Context, Sequence[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
    """The request's DataLoader called ``name``; ``batch`` answers a list of keys in order."""
    key = f"loader:{name}"
    found: Any = ctx.loaders.get(key)
    if found is None:
        found = ctx.loaders[key] = DataLoader(load_fn=lambda keys: batch(ctx, keys))
    loaded: DataLoader[K, V] = found
    return loaded
