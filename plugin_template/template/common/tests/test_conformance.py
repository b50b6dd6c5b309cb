"""bindcore's conformance kit, run against this plugin: one test per check (`pytest -k <check name>`).

If a check cannot pass yet, declare it in ``known_failures`` with the reason instead of deleting the test.
"""

from __future__ import annotations

from typing import ClassVar

from bindcore.testing import ModalityConformance

from {{package}} import TINY, {{Name}}Modality
from {{package}}.strategies import INVALID_INPUTS, {{name}}_inputs


class Test{{Name}}Conformance(ModalityConformance):
    modality = {{Name}}Modality
    config = TINY
    inputs = {{name}}_inputs()
    invalid_inputs = INVALID_INPUTS
    known_failures: ClassVar[dict[str, str]] = {}
