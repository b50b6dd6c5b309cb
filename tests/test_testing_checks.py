"""The conformance kit's checks: each passes on the reference modality and FAILS on a plugin broken in
exactly the way that check exists to catch (a check that cannot fail is a defect)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from pydantic import ConfigDict, Field
from torch import Tensor

from bindcore.testing import CHECKS, ConformanceFailure, ModalityUnderTest, ReferenceConfig, ReferenceModality
from bindcore.testing.checks import check_names

VALUES = st.floats(-100, 100, allow_nan=False, width=32)
INPUTS = st.lists(VALUES, min_size=2, max_size=40)
INVALID = ([1.0], [float("nan"), 1.0], "not numbers", [[1.0, 2.0], [3.0, 4.0]])


def subject_for(cls: type[ReferenceModality] = ReferenceModality, **fields: Any) -> ModalityUnderTest:
    fields.setdefault("invalid_inputs", INVALID)
    return ModalityUnderTest(cls, inputs=INPUTS, **fields)


@pytest.fixture
def reference_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the reference modality through a real ``bindcore`` entry point (a dist-info on sys.path)."""
    (tmp_path / "kitref_plugin.py").write_text(
        "import bindcore\n"
        "from bindcore.testing.reference import ReferenceModality\n\n"
        "@bindcore.hookimpl\n"
        "def register_modalities(register):\n"
        "    register(ReferenceModality)\n"
    )
    dist_info = tmp_path / "bind_kitref-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: bind-kitref\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text("[bindcore]\nreference = kitref_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BINDCORE_LOAD_PLUGINS", "bind-kitref")  # only this plugin: fast and isolated


@pytest.fixture
def nothing_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDCORE_LOAD_PLUGINS", "bind-kitref")  # a plugin that is not installed


# -- one broken plugin per check ---------------------------------------------------------------------------
class LossyConfig(ReferenceConfig):
    hidden_gain: float = Field(1.0, exclude=True)  # dropped by model_dump: the config cannot round-trip


class LossyConfigModality(ReferenceModality):
    Config = LossyConfig


class LaxConfig(ReferenceConfig):
    model_config = ConfigDict(extra="ignore")


class LaxConfigModality(ReferenceModality):
    Config = LaxConfig


class OpaqueConfig(ReferenceConfig):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    device: torch.device = torch.device("cpu")  # no JSON schema for an arbitrary type


class OpaqueConfigModality(ReferenceModality):
    Config = OpaqueConfig


class CountingModality(ReferenceModality):
    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        self.calls = getattr(self, "calls", 0) + 1
        return super().preprocess(inputs) + 1e-3 * self.calls


class RandomTouchingModality(ReferenceModality):
    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        return super().preprocess(inputs) + 0.0 * torch.rand(())  # same output, but consumes the global RNG


class MutatingModality(ReferenceModality):
    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        for item in inputs:
            if isinstance(item, list):
                item[0] = 0.0  # "clamps" the caller's data in place
        return super().preprocess(inputs)


class MetaDeviceModality(ReferenceModality):
    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        return super().preprocess(inputs).to("meta")


class DtypeDriftModality(ReferenceModality):
    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        x = super().preprocess(inputs)
        return x.double() if len(inputs) % 2 == 0 else x


class RangeScalingModality(ReferenceModality):
    def _one(self, item: Any) -> np.ndarray:
        values = super()._one(item)
        with np.errstate(divide="ignore", invalid="ignore"):
            return values / (values.max() - values.min())  # NaN for a constant signal


class UnresampledModality(ReferenceModality):
    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = [np.array(item, dtype=np.float32) for item in inputs]
        width = max(len(r) for r in rows)
        return torch.from_numpy(np.stack([np.pad(r, (0, width - len(r))) for r in rows]))


class BatchNormalisingModality(ReferenceModality):
    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        x = super().preprocess(inputs)
        return x - x.mean(dim=0, keepdim=True)


class SilentFixModality(ReferenceModality):
    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = []
        for item in inputs:
            try:
                values = np.nan_to_num(np.array(item, dtype=np.float64).reshape(-1))
            except (TypeError, ValueError):
                values = np.zeros(2)
            rows.append(np.interp(np.linspace(0, 1, self.config.length), np.linspace(0, 1, max(len(values), 2)),
                                  np.resize(values, max(len(values), 2))))
        return torch.tensor(np.stack(rows), dtype=torch.float32)


class UnnormalisedModality(ReferenceModality):
    def project(self, h: Tensor) -> Tensor:
        return self.head.proj(self.head.norm(h))


class BatchMixingModality(ReferenceModality):
    def encode(self, x: Tensor) -> Tensor:
        h = super().encode(x)
        return h + h.mean(dim=0, keepdim=True)


class DetachedEncoderModality(ReferenceModality):
    def encode(self, x: Tensor) -> Tensor:
        return super().encode(x).detach()


class HiddenStateModality(ReferenceModality):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.register_buffer("offset", torch.randn(self.config.width), persistent=False)

    def encode(self, x: Tensor) -> Tensor:
        return super().encode(x) + self.offset


class FrozenReference(ReferenceModality):
    trainable = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.requires_grad_(False)


class FrozenButTrainableModality(ReferenceModality):
    trainable = False  # declares itself a frozen wrapper, yet its parameters still require grad


class GlobalRandomToyModality(ReferenceModality):
    def render_toy(self, scene: Any) -> np.ndarray:
        return super().render_toy(scene) + np.random.normal(0.0, 0.1, self.config.length)


class ConceptBlindToyModality(ReferenceModality):
    def render_toy(self, scene: Any) -> np.ndarray:
        return super().render_toy(dataclasses.replace(scene, concept=0))


#: check → (broken subject, a fragment its failure message must contain)
BROKEN: dict[str, tuple[ModalityUnderTest, str]] = {
    "check_discovered_through_entry_point": (subject_for(), "not discovered"),
    "check_config_round_trip": (subject_for(LossyConfigModality, config={"hidden_gain": 2.0}),
                                "changed through JSON"),
    "check_config_rejects_extra_keys": (subject_for(LaxConfigModality), "was accepted"),
    "check_config_json_schema": (subject_for(OpaqueConfigModality), "no JSON schema"),
    "check_preprocess_deterministic": (subject_for(CountingModality), "different tensors"),
    "check_preprocess_leaves_rng_untouched": (subject_for(RandomTouchingModality), "global torch RNG"),
    "check_preprocess_leaves_inputs_untouched": (subject_for(MutatingModality), "in place"),
    "check_preprocess_stays_on_cpu": (subject_for(MetaDeviceModality), "on meta"),
    "check_preprocess_fixed_dtype": (subject_for(DtypeDriftModality), "elsewhere"),
    "check_preprocess_finite": (subject_for(RangeScalingModality), "NaN/Inf"),
    "check_preprocess_shape": (subject_for(UnresampledModality), "item shape"),
    "check_preprocess_batch_consistent": (subject_for(BatchNormalisingModality), "preprocessed alone"),
    "check_preprocess_rejects_invalid_inputs": (subject_for(SilentFixModality), "was accepted"),
    "check_embeddings_unit_norm": (subject_for(UnnormalisedModality), "are not 1"),
    "check_batch_invariance": (subject_for(BatchMixingModality), "embedded alone"),
    "check_gradients_reach_trainable_parameters": (subject_for(DetachedEncoderModality), "no gradient reached"),
    "check_frozen_modality_has_no_trainable_parameters": (subject_for(FrozenButTrainableModality),
                                                          "parameters require grad"),
    "check_state_dict_round_trip": (subject_for(HiddenStateModality), "outside the state_dict"),
    "check_render_toy": (subject_for(GlobalRandomToyModality), "not deterministic"),
    "check_binds_in_toy_world": (subject_for(ConceptBlindToyModality), "accuracy"),
}


def test_every_check_has_a_broken_variant() -> None:
    assert set(BROKEN) == set(CHECKS)


#: check → a conforming subject it applies to (the reference modality, or its frozen variant)
GOOD: dict[str, ModalityUnderTest] = {
    name: subject_for(FrozenReference if CHECKS[name].needs_frozen else ReferenceModality) for name in CHECKS
}


@pytest.mark.parametrize("name", check_names())
def test_check_passes_on_the_reference_modality(name: str, reference_installed: None) -> None:
    assert CHECKS[name].not_applicable(GOOD[name]) is None
    CHECKS[name](GOOD[name])


@pytest.mark.parametrize("name", check_names())
def test_check_fails_on_its_broken_plugin(name: str, nothing_installed: None) -> None:
    subject, fragment = BROKEN[name]
    assert CHECKS[name].not_applicable(subject) is None
    with pytest.raises(ConformanceFailure, match=fragment) as failure:
        CHECKS[name](subject)
    assert f"modality {subject.name!r}" in str(failure.value)


def test_checks_leave_the_global_rng_alone(reference_installed: None) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for name in ("check_gradients_reach_trainable_parameters", "check_binds_in_toy_world"):
        CHECKS[name](subject_for())
    assert torch.equal(before, torch.get_rng_state())


def test_checks_are_documented_public_functions() -> None:
    import bindcore.testing as kit

    for name, check in CHECKS.items():
        assert name.startswith("check_")
        assert getattr(kit, name) is check.func
        assert check.func.__doc__ and len(check.func.__doc__.strip()) > 20, name


class BatchRoundingModality(ReferenceModality):
    """Rows computed in a batch come out one ulp away from the same item alone, as BLAS may round them."""

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        x = super().preprocess(inputs)
        return torch.nextafter(x, torch.full_like(x, float("inf"))) if len(inputs) > 1 else x


def test_batch_consistency_allows_rounding_but_not_batch_statistics(nothing_installed: None) -> None:
    CHECKS["check_preprocess_batch_consistent"](subject_for(BatchRoundingModality))
    with pytest.raises(ConformanceFailure, match="preprocessed alone"):
        CHECKS["check_preprocess_batch_consistent"](subject_for(BatchNormalisingModality))
