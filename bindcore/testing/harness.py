"""The two ways to run the checks under pytest: subclass :class:`ModalityConformance`, or decorate one test
with :func:`parametrize_with_checks`. Both give one test per check, skip checks that do not apply (with the
reason) and treat declared known failures as strict expected failures."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from bindcore.testing.checks import CHECKS, Check
from bindcore.testing.subject import ModalityUnderTest


def _validate_known_failures(subject: ModalityUnderTest) -> None:
    unknown = sorted(set(subject.known_failures) - set(CHECKS))
    if unknown:
        raise ValueError(f"known_failures names unknown checks {unknown}; valid names: {', '.join(CHECKS)}")
    empty = sorted(name for name, reason in subject.known_failures.items() if not str(reason).strip())
    if empty:
        raise ValueError(f"known_failures {empty} need a reason")


def run_check(subject: ModalityUnderTest, name: str) -> None:
    """Run check ``name`` on ``subject`` under pytest: skip if not applicable, strict-xfail if declared."""
    _validate_known_failures(subject)
    check = CHECKS[name]
    reason = check.not_applicable(subject)
    if reason:
        pytest.skip(reason)
    known = subject.known_failures.get(name)
    if known is None:
        check(subject)
        return
    try:
        check(subject)
    except Exception as error:  # the declared failure happened: report it as xfail with both reasons
        pytest.xfail(f"known failure: {known} ({type(error).__name__}: {str(error)[:200]})")
    pytest.fail(f"{name} is declared a known failure ({known}) but passes: remove it from known_failures",
                pytrace=False)


def parametrize_with_checks(subjects: Iterable[ModalityUnderTest]) -> pytest.MarkDecorator:
    """``@parametrize_with_checks([ModalityUnderTest(...)])`` on ``def test_x(subject, check): check(subject)``.

    Test ids read ``<modality>-<check name>``. Checks that do not apply are skipped with their reason; known
    failures are marked ``xfail(strict=True)`` so a fixed one is noticed.
    """
    params = []
    for subject in subjects:
        _validate_known_failures(subject)
        for name, check in CHECKS.items():
            marks: list[Any] = [pytest.mark.bindcore_conformance(check=name)]
            reason = check.not_applicable(subject)
            if reason:
                marks.append(pytest.mark.skip(reason=reason))
            elif name in subject.known_failures:
                marks.append(pytest.mark.xfail(reason=f"known failure: {subject.known_failures[name]}", strict=True))
            params.append(pytest.param(subject, check, marks=marks, id=f"{subject.name}-{name}"))
    return pytest.mark.parametrize(("subject", "check"), params)


class ModalityConformance:
    """Subclass as ``class TestMine(ModalityConformance)`` and set the class attributes; pytest then collects
    one ``test_<check name without 'check_'>`` method per check. Override :meth:`subject` for full control."""

    #: the modality class, or the name it is registered under
    modality: ClassVar[Any] = None
    #: a hypothesis strategy drawing ONE valid raw input
    inputs: ClassVar[Any] = None
    #: options of a tiny instance (keeps the model checks and the toy binding fast)
    config: ClassVar[Mapping[str, Any]] = {}
    #: raw items preprocess must reject with bindcore.InputError
    invalid_inputs: ClassVar[Sequence[Any]] = ()
    #: check name → reason, for checks known to fail (strict: passing is reported)
    known_failures: ClassVar[Mapping[str, str]] = {}
    #: further ModalityUnderTest fields (max_examples, atol, binding_steps, binding_min_accuracy, …)
    options: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def subject(cls) -> ModalityUnderTest:
        if cls.modality is None or cls.inputs is None:
            raise TypeError(f"{cls.__name__} must set the class attributes 'modality' and 'inputs' "
                            f"(a hypothesis strategy of one valid raw input)")
        return ModalityUnderTest(cls.modality, inputs=cls.inputs, config=dict(cls.config),
                                 invalid_inputs=tuple(cls.invalid_inputs), known_failures=dict(cls.known_failures),
                                 **dict(cls.options))


def _method_for(check: Check) -> Callable[[ModalityConformance], None]:
    def test(self: ModalityConformance) -> None:
        run_check(type(self).subject(), check.name)

    short = check.name.removeprefix("check_")
    test.__name__ = test.__qualname__ = f"test_{short}"
    test.__doc__ = check.func.__doc__
    return pytest.mark.bindcore_conformance(check=check.name)(test)


for _check in CHECKS.values():
    setattr(ModalityConformance, f"test_{_check.name.removeprefix('check_')}", _method_for(_check))
del _check
