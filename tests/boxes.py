"""Files as they really arrive: préétablis loaded by CNSS's operators, declarations dropped by
each employer in its own box, <inbox>/<affiliate>/in/."""

from __future__ import annotations

from pathlib import Path

from cnss_edi.process import Locations, load_preetabli
from cnss_edi.sample import write_samples
from cnss_edi.store import Store


def box(places: Locations, affiliate: int) -> Path:
    """An employer's drop box (created when missing)."""
    path = places.inbox / f"{affiliate:07d}" / "in"
    path.mkdir(parents=True, exist_ok=True)
    return path


def deliver(
    places: Locations, store: Store, *, affiliate: int = 1234567, period: str = "202610", **options
) -> list[Path]:
    """Write samples (write_samples' options), load their préétablis, drop each declaration
    in its employer's box; returns the declarations as dropped."""
    staging = places.inbox.parent / "cnss"
    paths = write_samples(staging, affiliate=affiliate, period=period, **options)
    dropped = []
    for path in paths:
        if path.name.startswith("AFFEBDS_"):
            load_preetabli(path, path.read_bytes(), store=store)
        else:
            dropped.append(path.rename(box(places, int(path.name.split("_")[1])) / path.name))
    return dropped
