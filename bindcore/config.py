"""Base class for every plugin's pydantic ``Config``, and a helper that turns
pydantic errors into messages that name the key and the valid keys."""

from __future__ import annotations

import difflib
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from bindcore.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


class ModalityConfig(BaseModel):
    """Options of one modality. Plugins subclass it; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


def _model_in(annotation: Any) -> Any:
    """``annotation`` itself, or the one pydantic model of an optional one (``Sub | None``)."""
    if getattr(annotation, "model_fields", None):
        return annotation
    models = [arg for arg in get_args(annotation) if getattr(arg, "model_fields", None)]
    return models[0] if len(models) == 1 else annotation


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid field names of the (possibly nested, possibly optional) model at ``loc[:-1]``."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = _model_in(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def format_validation_error(model: type[BaseModel], error: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``path.to.key: message[, did you mean X?] (valid keys: ...)``."""
    lines = []
    for problem in error.errors():
        loc = tuple(problem["loc"])
        path = ".".join(str(p) for p in (prefix.split(".") if prefix else []) + list(loc))
        if problem["type"] == "extra_forbidden":
            valid = _valid_keys(model, loc)
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f", did you mean {close[0]}?" if close else ""
            lines.append(f"{path}: unknown key{hint} (valid keys: {', '.join(valid)})")
        else:
            lines.append(f"{path}: {problem['msg']} (got {problem.get('input')!r})")
    return "\n".join(lines)


def validate_config(model: type[C], values: dict[str, Any], *, where: str = "") -> C:
    """Validate ``values`` against ``model``, raising :class:`ConfigError` with readable paths."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ConfigError(format_validation_error(model, error, where)) from None
