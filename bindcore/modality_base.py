"""The ``Modality`` contract every plugin implements (exported as ``bindcore.Modality``; the module is not
named ``modality`` because ``bindcore.modality`` is the factory function).

A modality turns raw inputs (paths, arrays, strings…) into embeddings in the shared space in three
steps: ``preprocess`` (raw items → batched float tensor on the CPU; it reads the items and the files they
name and nothing else: no network, no globals, no device moves, no RNG, no training state),
``encode`` (tensor → trunk features) and ``project`` (features → unit-norm ``(B, D)``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from bindcore.config import ModalityConfig, validate_config
from bindcore.errors import NonFiniteError

if TYPE_CHECKING:
    from bindcore.toyworld import Scene


class Modality(nn.Module):
    """Base class of every modality. Subclasses set ``name`` and ``Config`` and implement the steps."""

    name: ClassVar[str]
    Config: ClassVar[type[ModalityConfig]] = ModalityConfig
    #: False for modalities that wrap the frozen anchor (vision, text): the trainer never updates them.
    trainable: ClassVar[bool] = True
    #: What the axes of a preprocessed batch mean, for train-time augmentation: a name ("height", "width",
    #: "frequency", "time") → a negative axis index (e.g. audio ``{"frequency": -2, "time": -1}``). The trainer
    #: augments only declared axes and never infers meaning from rank; empty = only axis-free augmentations.
    augment_axes: ClassVar[Mapping[str, int]] = {}
    #: Licence and origin of loaded weights (set by ``load_modality``/conversion), saved with the weights.
    weights_license: str | None = None
    weights_source: str | None = None

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__()
        if config is None:
            config = validate_config(self.Config, options, where=self.name)
        elif options:
            raise TypeError("pass either a config object or keyword options, not both")
        elif not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    # -- the three steps ---------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Dimension D of the shared embedding space this modality projects into."""
        raise NotImplementedError

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        """Raw inputs → one batched float tensor (CPU). Raises :class:`bindcore.InputError` naming a bad item."""
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        """Preprocessed batch → trunk features."""
        raise NotImplementedError

    def project(self, h: Tensor) -> Tensor:
        """Trunk features → L2-normalised ``(B, D)`` embeddings."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.encode(x))

    # -- conveniences ------------------------------------------------------------------------------
    def input_device_dtype(self) -> tuple[torch.device, torch.dtype]:
        """Where preprocessed tensors should go before ``encode`` (the first parameter's device/dtype)."""
        for param in self.parameters():
            return param.device, param.dtype
        return torch.device("cpu"), torch.float32

    def to_model_input(self, x: Tensor) -> Tensor:
        """Move a preprocessed batch to this module's device; float tensors also take its dtype."""
        device, dtype = self.input_device_dtype()
        return x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)

    @torch.no_grad()
    def embed(self, inputs: Sequence[Any]) -> Tensor:
        """preprocess → encode → project, in eval mode without autograd. Raises if any row is not finite."""
        was_training = self.training
        self.eval()
        try:
            z = self(self.to_model_input(self.preprocess(inputs)))
        finally:
            self.train(was_training)
        bad = ~torch.isfinite(z).all(dim=-1)
        if bad.any():
            rows = bad.nonzero().flatten().tolist()
            raise NonFiniteError(f"{self.name}: non-finite embedding for input rows {rows}")
        return z

    def save(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Write this modality as a directory (``bindcore.json`` + ``model.safetensors``); see :mod:`bindcore.io`."""
        from bindcore.io import save_modality

        return save_modality(self, path, **kwargs)

    @classmethod
    def from_imagebind(cls, state_dict: Mapping[str, Tensor], **config: Any) -> Modality:
        """Build this modality from its entries of an ImageBind checkpoint.

        ``state_dict`` holds the entries whose keys start with ``modality_preprocessors.<name>.``,
        ``modality_trunks.<name>.``, ``modality_heads.<name>.`` or ``modality_postprocessors.<name>.``
        (prefixes kept). Sizes are inferred from tensor shapes; ``config`` gives what shapes cannot
        tell (e.g. ``num_heads``).
        """
        raise NotImplementedError(f"modality {cls.name!r} cannot load ImageBind weights")

    def render_toy(self, scene: Scene) -> Any:
        """Render a toy-world scene into one raw input of this modality (what ``preprocess`` accepts)."""
        raise NotImplementedError(f"modality {self.name!r} cannot render toy-world scenes")

    def extra_repr(self) -> str:
        return f"name={self.name!r}"
