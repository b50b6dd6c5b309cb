"""bindcore's conformance kit, run against this plugin: one test per check (`pytest -k <check name>`).

If a check cannot pass yet, declare it in ``known_failures`` with the reason instead of deleting the test.
"""

from __future__ import annotations

import math
from typing import ClassVar

from bindcore.testing import ModalityConformance

from {{package}} import {{Name}}Modality
from {{package}}.strategies import {{name}}_inputs

TINY = {"grid_size": 16, "patch_size": 4, "width": 32, "num_layers": 1, "num_heads": 2, "embed_dim": 16}


class Test{{Name}}Conformance(ModalityConformance):
    modality = {{Name}}Modality
    config = TINY
    inputs = {{name}}_inputs()
    invalid_inputs = ([1.0, 2.0, 3.0], [[1.0, math.nan], [0.0, 0.0]], "not a map", [[1.0]])
    known_failures: ClassVar[dict[str, str]] = {}
