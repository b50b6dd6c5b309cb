"""The kit's two pytest styles, its known-failure and applicability rules, and its pytest11 plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from torch import Tensor

from bindcore.testing import CHECKS, ModalityConformance, ModalityUnderTest, ReferenceModality, run_check
from bindcore.testing.harness import parametrize_with_checks

INPUTS = st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=2, max_size=8)
REPO_ROOT = Path(__file__).resolve().parents[1]


class FrozenReference(ReferenceModality):
    trainable = False


class UnnormalisedReference(ReferenceModality):
    def project(self, h: Tensor) -> Tensor:
        return self.head.proj(h)


def test_subclass_style_has_one_test_method_per_check() -> None:
    methods = {name for name in dir(ModalityConformance) if name.startswith("test_")}
    assert methods == {"test_" + name.removeprefix("check_") for name in CHECKS}
    # the base class itself is not collected (its name does not start with "Test")
    assert not ModalityConformance.__name__.startswith("Test")


def test_subclass_without_modality_or_inputs_says_what_to_set() -> None:
    class TestIncomplete(ModalityConformance):
        modality = ReferenceModality

    with pytest.raises(TypeError, match="'inputs'"):
        TestIncomplete().test_config_round_trip()


def test_subclass_runs_a_check_and_reports_its_failure() -> None:
    class TestBroken(ModalityConformance):
        modality = UnnormalisedReference
        inputs = INPUTS

    TestBroken().test_config_round_trip()
    with pytest.raises(AssertionError, match="L2-normalise"):
        TestBroken().test_embeddings_unit_norm()


def test_checks_needing_training_are_skipped_with_a_reason_for_frozen_modalities() -> None:
    subject = ModalityUnderTest(FrozenReference, inputs=INPUTS)
    for name in ("check_gradients_reach_trainable_parameters", "check_binds_in_toy_world"):
        with pytest.raises(pytest.skip.Exception, match="trainable is False"):
            run_check(subject, name)


def test_invalid_input_check_is_skipped_with_a_reason_when_none_are_declared() -> None:
    with pytest.raises(pytest.skip.Exception, match="no invalid_inputs"):
        run_check(ModalityUnderTest(ReferenceModality, inputs=INPUTS), "check_preprocess_rejects_invalid_inputs")


def test_known_failure_is_an_expected_failure_with_its_reason() -> None:
    subject = ModalityUnderTest(UnnormalisedReference, inputs=INPUTS,
                                known_failures={"check_embeddings_unit_norm": "head normalises later"})
    with pytest.raises(pytest.xfail.Exception, match="head normalises later"):
        run_check(subject, "check_embeddings_unit_norm")


def test_known_failure_that_passes_is_reported() -> None:
    subject = ModalityUnderTest(ReferenceModality, inputs=INPUTS,
                                known_failures={"check_embeddings_unit_norm": "stale declaration"})
    with pytest.raises(pytest.fail.Exception, match="remove it from known_failures"):
        run_check(subject, "check_embeddings_unit_norm")


@pytest.mark.parametrize("known", [{"check_typo": "x"}, {"check_batch_invariance": " "}])
def test_known_failures_must_name_real_checks_with_reasons(known: dict[str, str]) -> None:
    subject = ModalityUnderTest(ReferenceModality, inputs=INPUTS, known_failures=known)
    with pytest.raises(ValueError, match="known_failures"):
        run_check(subject, "check_config_round_trip")
    with pytest.raises(ValueError, match="known_failures"):
        parametrize_with_checks([subject])


def test_parametrize_with_checks_gives_readable_ids_and_marks() -> None:
    subjects = [ModalityUnderTest(FrozenReference, inputs=INPUTS, label="frozen",
                                  known_failures={"check_render_toy": "no renderer yet"})]
    decorator = parametrize_with_checks(subjects)
    argnames, params = decorator.args
    assert argnames == ("subject", "check")
    by_id = {p.id: p for p in params}
    assert list(by_id) == [f"frozen-{name}" for name in CHECKS]
    mark_names = {pid: {m.name for m in p.marks} for pid, p in by_id.items()}
    assert "skip" in mark_names["frozen-check_binds_in_toy_world"]
    assert "xfail" in mark_names["frozen-check_render_toy"]
    assert {m.kwargs.get("strict") for m in by_id["frozen-check_render_toy"].marks if m.name == "xfail"} == {True}
    assert mark_names["frozen-check_batch_invariance"] == {"bindcore_conformance"}


def _run_pytest(args: list[str], cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rsx", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_both_styles_under_pytest_through_the_pytest11_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_kit_use.py").write_text(textwrap.dedent("""
        from hypothesis import strategies as st
        from bindcore.testing import ModalityConformance, ModalityUnderTest, ReferenceModality
        from bindcore.testing import parametrize_with_checks

        INPUTS = st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=2, max_size=8)
        NOT_INSTALLED = {"check_discovered_through_entry_point": "not installed in this temporary test"}

        class TestReference(ModalityConformance):
            modality = ReferenceModality
            inputs = INPUTS
            invalid_inputs = [[1.0]]
            known_failures = NOT_INSTALLED

        @parametrize_with_checks([ModalityUnderTest(ReferenceModality, inputs=INPUTS, known_failures=NOT_INSTALLED)])
        def test_reference(subject, check):
            check(subject)
    """))
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --import-mode=importlib\n")
    # discovery is a declared failure here: load no installed plugin while it runs (faster)
    result = _run_pytest(["--bindcore-skip-binding", "-vv"], tmp_path, {"BINDCORE_LOAD_PLUGINS": "bind-none"})
    assert "test_reference[reference-check_batch_invariance] PASSED" in result.stdout, result.stdout + result.stderr
    assert "TestReference::test_batch_invariance PASSED" in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    checks = len(CHECKS)
    # skipped: binding (by the option) in both styles, the frozen-wrapper check in both (the reference is
    # trainable), the invalid-input check in the parametrized style (none declared there); one known failure per
    # style; the rest pass
    assert f"{2 * checks - 7} passed" in summary and "5 skipped" in summary and "2 xfailed" in summary, (
        result.stdout + result.stderr)
    assert "skipped by --bindcore-skip-binding" in result.stdout
    assert "known failure: not installed in this temporary test" in result.stdout


def test_pytest_plugin_imports_nothing_heavy() -> None:
    code = textwrap.dedent("""
        import sys
        import bindcore, pytest
        before = set(sys.modules)
        import bindcore.testing.pytest_plugin
        added = sorted(m for m in set(sys.modules) - before if not m.startswith("bindcore.testing"))
        heavy = [m for m in set(sys.modules) - before if m.split(".")[0] in ("hypothesis", "numpy", "safetensors")
                 or m in ("bindcore.testing.checks", "bindcore.testing.harness", "bindcore.testing.reference")]
        print(added, heavy)
        sys.exit(1 if heavy else 0)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_bindcore_registry_fixture_is_empty_and_restored(bindcore_registry: Any) -> None:
    from bindcore.plugins import get_registry

    assert get_registry() is bindcore_registry
    assert bindcore_registry.names() == []
