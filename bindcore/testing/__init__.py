"""The bindcore conformance kit: checks every modality plugin should pass, usable two ways.

Subclass style (pandas/fsspec)::

    from bindcore.testing import ModalityConformance

    class TestTactile(ModalityConformance):
        modality = TactileModality            # or the registered name, "tactile"
        config = {"width": 32, "depth": 1}    # a tiny config keeps the kit fast
        inputs = tactile_maps()               # hypothesis strategy of ONE valid raw input
        known_failures = {"check_render_toy": "no toy renderer yet"}

Parametrize style (scikit-learn)::

    from bindcore.testing import ModalityUnderTest, parametrize_with_checks

    @parametrize_with_checks([ModalityUnderTest(TactileModality, inputs=tactile_maps())])
    def test_conformance(subject, check):
        check(subject)

Either way pytest shows one test per check (``pytest -k check_batch_invariance``). Check names are
public API.

Parity tests find the shared ImageBind vectors with the ``parity_dir`` fixture (from the pytest plugin) or
``parity_dir(*required_files)``: ``$BINDCORE_PARITY_DIR``, else ``<repo root>/../shared/imagebind_vectors``;
either skips the test with the path and the variable to set when the vectors are absent.

A plugin's own toy-renderer tests can use ``nearest_centroid_accuracy`` (is the concept recoverable without
learning?), ``map_spectra`` (position-invariant features of single-channel maps) and ``nuisance_changes``.

Exposed to pytest through the ``pytest11`` entry point ``bindcore.testing.pytest_plugin``.

This package is imported lazily so that pytest's plugin loading does not pay for torch or hypothesis.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ModalityUnderTest": "bindcore.testing.subject",
    "Check": "bindcore.testing.checks",
    "CHECKS": "bindcore.testing.checks",
    "ConformanceFailure": "bindcore.testing.checks",
    "check_names": "bindcore.testing.checks",
    "ModalityConformance": "bindcore.testing.harness",
    "parametrize_with_checks": "bindcore.testing.harness",
    "run_check": "bindcore.testing.harness",
    "ReferenceModality": "bindcore.testing.reference",
    "ReferenceConfig": "bindcore.testing.reference",
    "parity_dir": "bindcore.testing.parity",
    "parity_vectors_path": "bindcore.testing.parity",
    "PARITY_DIR_ENV": "bindcore.testing.parity",
    "nearest_centroid_accuracy": "bindcore.testing.toy",
    "map_spectra": "bindcore.testing.toy",
    "nuisance_changes": "bindcore.testing.toy",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name.startswith("check_"):
        checks = importlib.import_module("bindcore.testing.checks")
        if hasattr(checks, name):
            return getattr(checks, name)
    raise AttributeError(f"module 'bindcore.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = list(_LAZY)
