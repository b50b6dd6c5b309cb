"""The conformance checks. Each is a public function ``check_<what>(subject)`` that returns None when the
modality conforms and raises :class:`ConformanceFailure` (an ``AssertionError``) saying what is wrong and
how to fix it. Check names are public API: rename one only through a deprecation.

Property checks draw raw inputs from the subject's hypothesis strategy with ``derandomize=True``, so a
CI run is reproducible; model checks build the modality from fixed seeds inside ``torch.random.fork_rng``
so they never disturb the caller's random state.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bindcore.config import ModalityConfig
from bindcore.errors import ConfigError, DuplicateModalityError, InputError, UnknownModalityError
from bindcore.testing.check_support import (  # the registry and failure type are public through this module
    CHECKS,
    Check,
    ConformanceFailure,
    _batches,
    _changed_rngs,
    _check,
    _embed,
    _fail,
    _for_all,
    _preprocess,
    _rng_state,
    _same_raw,
    _same_tensor,
    _same_up_to_rounding,
    check_names,
)
from bindcore.testing.subject import ModalityUnderTest


# -- discovery and configuration -------------------------------------------------------------------------
@_check()
def check_discovered_through_entry_point(subject: ModalityUnderTest) -> None:
    """A fresh registry, loading installed ``bindcore`` entry points, finds this exact class under its name."""
    from bindcore.plugins import Registry

    cls = subject.cls
    registry = Registry()
    try:
        found = registry.get(cls.name)
    except UnknownModalityError as error:
        _fail(subject, f"not discovered through the 'bindcore' entry-point group: {error}. Declare "
                       f"[project.entry-points.bindcore] {cls.name} = \"<your package>\" in pyproject.toml, "
                       f"implement @bindcore.hookimpl register_modalities(register) there, and install the "
                       f"plugin (pip install -e .)")
    except DuplicateModalityError as error:
        _fail(subject, f"discovered more than once: {error}")
    if found is not cls:
        _fail(subject, f"the entry point registers {found.__module__}.{found.__qualname__} as {cls.name!r}, "
                       f"not {cls.__module__}.{cls.__qualname__}")
    broken = [p for p in registry.plugins() if cls.name in p.modalities and p.error]
    if broken:
        _fail(subject, f"its plugin reported a load error: {broken[0].error}")


@_check()
def check_config_round_trip(subject: ModalityUnderTest) -> None:
    """``Config`` is a frozen ``ModalityConfig``; dumping to JSON and validating back gives an equal config,
    and ``Cls(**config.model_dump())`` rebuilds a modality with that config."""
    cls = subject.cls
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, ModalityConfig)):
        _fail(subject, f"{cls.__name__}.Config must subclass bindcore.ModalityConfig")
    config = subject.build().config
    if not isinstance(config, cls.Config):
        _fail(subject, f"the built modality's .config is a {type(config).__name__}, not {cls.Config.__name__}")
    dumped = config.model_dump(mode="json")
    try:
        text = json.dumps(dumped)
    except TypeError as error:
        _fail(subject, f"config.model_dump(mode='json') is not JSON-serialisable: {error}")
    again = cls.Config.model_validate(json.loads(text))
    if again != config:
        _fail(subject, f"config changed through JSON: {config!r} became {again!r} (a field excluded from "
                       f"dumps or a lossy serialiser?)")
    rebuilt = cls(**json.loads(text))
    if rebuilt.config != config:
        _fail(subject, f"{cls.__name__}(**config.model_dump()) has config {rebuilt.config!r}, not {config!r}")
    for field_name in cls.Config.model_fields:
        try:
            setattr(config, field_name, getattr(config, field_name))
        except Exception:  # pydantic raises ValidationError on a frozen model: the wanted outcome
            break
        _fail(subject, f"{cls.Config.__name__} is mutable: keep model_config frozen=True (the ModalityConfig "
                       f"default) so a built modality's config cannot drift from its weights")


@_check()
def check_config_rejects_extra_keys(subject: ModalityUnderTest) -> None:
    """An unknown option raises :class:`bindcore.ConfigError` naming the key (no silent ignore)."""
    cls = subject.cls
    key = "not_an_option_of_this_modality"
    try:
        cls(**dict(subject.config), **{key: 1})
    except ConfigError as error:
        if key not in str(error):
            _fail(subject, f"the ConfigError for an unknown key does not name it: {error}")
        return
    except Exception as error:
        _fail(subject, f"an unknown key raised {type(error).__name__} instead of bindcore.ConfigError: {error}")
    _fail(subject, f"{cls.__name__}(..., {key}=1) was accepted: keep extra='forbid' on the Config")


@_check()
def check_config_json_schema(subject: ModalityUnderTest) -> None:
    """``Config.model_json_schema()`` works, is JSON, lists every field and forbids additional properties."""
    config_cls = subject.cls.Config
    try:
        schema = config_cls.model_json_schema()
        json.dumps(schema)
    except Exception as error:
        _fail(subject, f"{config_cls.__name__} has no JSON schema ({type(error).__name__}: {error}); use "
                       f"JSON-representable field types (str, int, float, bool, lists, Literal, nested models)")
    missing = sorted(set(config_cls.model_fields) - set(schema.get("properties", {})))
    if missing:
        _fail(subject, f"JSON schema lacks fields {missing}")
    if schema.get("additionalProperties") is not False:
        _fail(subject, "JSON schema allows additional properties: keep extra='forbid' on the Config")


# -- preprocess --------------------------------------------------------------------------------------------
@_check()
def check_preprocess_deterministic(subject: ModalityUnderTest) -> None:
    """The same raw batch gives bit-identical tensors on every call, in train and in eval mode."""
    module = subject.build()

    def test(batch: list[Any]) -> None:
        module.eval()
        first = _preprocess(subject, module, batch)
        second = _preprocess(subject, module, batch)
        module.train()
        in_train = _preprocess(subject, module, batch)
        module.eval()
        if not (_same_tensor(first, second) and _same_tensor(first, in_train)):
            _fail(subject, "preprocess gave different tensors for the same input (it must not depend on RNG, "
                           "call counts, caches or train/eval mode)")

    _for_all(subject, _batches(subject), test)


@_check()
def check_preprocess_leaves_rng_untouched(subject: ModalityUnderTest) -> None:
    """preprocess neither draws from nor reseeds the torch, numpy or ``random`` global generators."""
    module = subject.build()

    def test(batch: list[Any]) -> None:
        before = _rng_state()
        _preprocess(subject, module, batch)
        changed = _changed_rngs(before, _rng_state())
        if changed:
            _fail(subject, f"preprocess used the global {', '.join(changed)} RNG; augmentation belongs in the "
                           f"trainer, preprocess must be pure")

    _for_all(subject, _batches(subject), test)


@_check()
def check_preprocess_leaves_inputs_untouched(subject: ModalityUnderTest) -> None:
    """preprocess does not modify the caller's raw inputs in place."""
    module = subject.build()

    def test(batch: list[Any]) -> None:
        snapshot = copy.deepcopy(batch)
        _preprocess(subject, module, batch)
        if not _same_raw(batch, snapshot):
            _fail(subject, "preprocess modified its input in place; copy before normalising "
                           "(np.array(item, dtype=...) instead of np.asarray)")

    _for_all(subject, _batches(subject), test)


@_check()
def check_preprocess_stays_on_cpu(subject: ModalityUnderTest) -> None:
    """preprocess returns a CPU tensor: moving data to the model's device is the caller's job."""
    module = subject.build()

    def test(batch: list[Any]) -> None:
        x = _preprocess(subject, module, batch)
        if x.device.type != "cpu":
            _fail(subject, f"preprocess returned a tensor on {x.device}; return CPU tensors "
                           f"(Modality.to_model_input moves them)")

    _for_all(subject, _batches(subject), test)


@_check()
def check_preprocess_fixed_dtype(subject: ModalityUnderTest) -> None:
    """Every valid input gives the same dtype (``expected_dtype`` when the subject pins one)."""
    module = subject.build()
    seen: dict[str, Any] = {}

    def test(batch: list[Any]) -> None:
        x = _preprocess(subject, module, batch)
        expected = subject.expected_dtype or seen.setdefault("dtype", x.dtype)
        if x.dtype != expected:
            _fail(subject, f"preprocess returned {x.dtype} here but {expected} elsewhere; convert to one fixed "
                           f"dtype whatever the input's dtype")

    _for_all(subject, _batches(subject), test)


@_check()
def check_preprocess_finite(subject: ModalityUnderTest) -> None:
    """Every valid input preprocesses to finite values (guard divisions by a range or a norm)."""
    module = subject.build()

    def test(batch: list[Any]) -> None:
        x = _preprocess(subject, module, batch)
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = (~torch.isfinite(x)).reshape(x.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
            _fail(subject, f"preprocess produced NaN/Inf for batch rows {bad}; valid inputs must give finite "
                           f"tensors (invalid ones must raise bindcore.InputError)")

    _for_all(subject, _batches(subject), test)


@_check()
def check_preprocess_shape(subject: ModalityUnderTest) -> None:
    """A batch of B items gives ``(B, *item_shape)`` with one item shape for every valid input."""
    module = subject.build()
    seen: dict[str, Any] = {}

    def test(batch: list[Any]) -> None:
        x = _preprocess(subject, module, batch)
        if x.ndim < 1 or x.shape[0] != len(batch):
            _fail(subject, f"preprocess of {len(batch)} items returned shape {tuple(x.shape)}; the first axis "
                           f"must be the batch")
        item_shape = seen.setdefault("item_shape", tuple(x.shape[1:]))
        if tuple(x.shape[1:]) != item_shape:
            _fail(subject, f"item shape {tuple(x.shape[1:])} differs from {item_shape} for another input; "
                           f"resize/pad/crop every input to the configured size")

    _for_all(subject, _batches(subject), test)


@_check()
def check_preprocess_batch_consistent(subject: ModalityUnderTest) -> None:
    """Row i of ``preprocess(batch)`` equals ``preprocess([batch[i]])`` up to float rounding (no batch statistics).

    Rounding is allowed because BLAS may round a matrix product's columns differently for different batch
    sizes (MKL does on AMD CPUs); batch-wide normalisation or padding changes values by far more.
    """
    module = subject.build()

    def test(batch: list[Any]) -> None:
        x = _preprocess(subject, module, batch)
        for i, item in enumerate(batch):
            alone = _preprocess(subject, module, [item])
            if alone.shape[1:] != x.shape[1:] or not _same_up_to_rounding(x[i:i + 1], alone):
                _fail(subject, f"row {i} of a batch differs from the same item preprocessed alone; preprocess "
                               f"must treat items independently (no batch-wide normalisation or padding)")

    _for_all(subject, _batches(subject, min_size=2), test)


@_check(needs_invalid_inputs=True)
def check_preprocess_rejects_invalid_inputs(subject: ModalityUnderTest) -> None:
    """Each declared invalid item raises :class:`bindcore.InputError` (never a silent fix or another error)."""
    module = subject.build()
    for item in subject.invalid_inputs:
        try:
            module.preprocess([item])
        except InputError:
            continue
        except Exception as error:
            _fail(subject, f"invalid input {item!r:.80} raised {type(error).__name__} ({error}) instead of "
                           f"bindcore.InputError(item, reason, fix=...)")
        _fail(subject, f"invalid input {item!r:.80} was accepted; raise bindcore.InputError naming the problem")


# -- the model -------------------------------------------------------------------------------------------------
@_check()
def check_embeddings_unit_norm(subject: ModalityUnderTest) -> None:
    """encode → project gives ``(B, embed_dim)`` finite rows of unit L2 norm; ``embed`` gives the same."""
    module = subject.build().eval()

    def test(batch: list[Any]) -> None:
        z = _embed(module, _preprocess(subject, module, batch))
        if tuple(z.shape) != (len(batch), module.embed_dim):
            _fail(subject, f"embeddings have shape {tuple(z.shape)}, expected ({len(batch)}, {module.embed_dim})")
        if not bool(torch.isfinite(z).all()):
            _fail(subject, "embeddings contain NaN/Inf")
        norms = z.norm(dim=-1)
        if not torch.allclose(norms, torch.ones_like(norms), atol=1e-4):
            _fail(subject, f"embedding norms {norms.tolist()} are not 1: L2-normalise in project")
        if not torch.allclose(module.embed(batch), z, atol=subject.atol):
            _fail(subject, "embed(inputs) differs from project(encode(preprocess(inputs)))")

    _for_all(subject, _batches(subject), test, model=True)


@_check()
def check_batch_invariance(subject: ModalityUnderTest) -> None:
    """In eval mode, row i of a batch's embeddings equals item i embedded alone (within ``atol``)."""
    module = subject.build().eval()

    def test(batch: list[Any]) -> None:
        z = _embed(module, _preprocess(subject, module, batch))
        for i, item in enumerate(batch):
            alone = _embed(module, _preprocess(subject, module, [item]))[0]
            error = float((z[i] - alone).abs().max())
            if not error <= subject.atol:
                _fail(subject, f"row {i} of a batch differs from the item embedded alone by {error:.2e} "
                               f"(> atol {subject.atol}); encode/project must not mix batch rows")

    _for_all(subject, _batches(subject, min_size=2, max_size=4), test, model=True)


@_check(needs_trainable=True)
def check_gradients_reach_trainable_parameters(subject: ModalityUnderTest) -> None:
    """A loss on the embeddings gives every parameter with ``requires_grad`` a finite gradient."""
    module = subject.build()
    trainable = {name: p for name, p in module.named_parameters() if p.requires_grad}
    if not trainable:
        _fail(subject, "trainable is True but no parameter requires grad")

    def test(batch: list[Any]) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module.train()
            module.zero_grad(set_to_none=True)
            z = module.project(module.encode(module.to_model_input(_preprocess(subject, module, batch))))
            direction = F.normalize(torch.randn(z.shape[-1]), dim=0).to(z)
            (z @ direction).sum().backward()
        unused = [name for name, p in trainable.items() if p.grad is None]
        if unused:
            _fail(subject, f"no gradient reached {unused[:8]}{' …' if len(unused) > 8 else ''}: a detach(), "
                           f"no_grad or an unused submodule (freeze it with requires_grad_(False) if intended)")
        bad = [name for name, p in trainable.items() if not bool(torch.isfinite(p.grad).all())]
        if bad:
            _fail(subject, f"non-finite gradients in {bad[:8]}")
        if all(float(p.grad.abs().max()) == 0.0 for p in trainable.values()):
            _fail(subject, "every gradient is exactly zero")

    _for_all(subject, _batches(subject, min_size=2), test, model=True)


@_check(needs_frozen=True)
def check_frozen_modality_has_no_trainable_parameters(subject: ModalityUnderTest) -> None:
    """A modality declaring ``trainable = False`` (a frozen anchor wrapper) has no parameter that requires grad,
    so no optimiser can update the anchor through it, and its embeddings carry no autograd graph."""
    module = subject.build()
    trainable = [name for name, p in module.named_parameters() if p.requires_grad]
    if trainable:
        _fail(subject, f"trainable is False but {len(trainable)} parameters require grad ({trainable[:5]}); "
                       f"call requires_grad_(False) on the wrapped anchor")

    def test(batch: list[Any]) -> None:
        module.train()
        z = module.project(module.encode(module.to_model_input(_preprocess(subject, module, batch))))
        if z.requires_grad:
            _fail(subject, "embeddings of a frozen modality require grad: something trainable is in the graph")

    _for_all(subject, _batches(subject), test, model=True)


@_check()
def check_state_dict_round_trip(subject: ModalityUnderTest) -> None:
    """Weights loaded into a differently initialised instance (``load_state_dict`` and ``Modality.save`` →
    ``bindcore.io.load_modality``) reproduce the embeddings: no state outside the state_dict."""
    from bindcore.io import load_modality
    from bindcore.plugins import Registry, set_registry

    original = subject.build(seed=0).eval()
    other = subject.build(seed=1)
    other.load_state_dict(original.state_dict(), strict=True)
    other.eval()

    with tempfile.TemporaryDirectory() as tmp:
        original.save(f"{tmp}/saved")
        previous = set_registry(_registry_with(Registry(load_entry_points=False), subject.cls))
        try:
            loaded = load_modality(f"{tmp}/saved").eval()
        finally:
            set_registry(previous)
    if type(loaded) is not subject.cls or loaded.config != original.config:
        _fail(subject, f"load_modality gave {type(loaded).__name__} with config {loaded.config!r}, expected "
                       f"{subject.cls.__name__} with {original.config!r}")

    def test(batch: list[Any]) -> None:
        x = _preprocess(subject, original, batch)
        expected = _embed(original, x)
        for how, copy_ in (("load_state_dict", other), ("save/load_modality", loaded)):
            error = float((_embed(copy_, x) - expected).abs().max())
            if not error <= subject.atol:
                _fail(subject, f"after {how} the embeddings differ by {error:.2e}: some state lives outside the "
                               f"state_dict (use nn.Parameter or register_buffer(persistent=True))")

    _for_all(subject, _batches(subject), test, model=True)


def _registry_with(registry: Any, cls: type) -> Any:
    from bindcore.hookspecs import hookimpl

    class _OneModality:
        @hookimpl
        def register_modalities(self, register: Callable[[type], None]) -> None:
            register(cls)

    registry.add_plugin(_OneModality(), name=f"conformance-{cls.name}")
    return registry


# -- the toy world ---------------------------------------------------------------------------------------------
@_check()
def check_render_toy(subject: ModalityUnderTest) -> None:
    """``render_toy(scene)`` returns raw input that preprocess accepts; it is deterministic per scene, and
    nuisance variables change the rendering of one concept."""
    from bindcore.toyworld import generate_scenes

    module = subject.build()
    scenes = generate_scenes(20, seed=99)
    first = _preprocess(subject, module, [module.render_toy(s) for s in scenes])
    second = _preprocess(subject, module, [module.render_toy(s) for s in scenes])
    if not _same_tensor(first, second):
        _fail(subject, "render_toy is not deterministic: draw randomness from scene.rng('<modality>') only")
    pairs = [(i, j) for i in range(len(scenes)) for j in range(i + 1, len(scenes))
             if scenes[i].concept == scenes[j].concept]
    if all(_same_tensor(first[i], first[j]) for i, j in pairs):
        _fail(subject, "every scene of a concept renders identically: let x, y, size, brightness and noise vary "
                       "the rendering")


@_check(needs_trainable=True)
def check_binds_in_toy_world(subject: ModalityUnderTest) -> None:
    """A few hundred CPU steps of InfoNCE against a stand-in frozen anchor (a fixed unit vector per concept
    plus small per-scene noise) bind toy-world renderings: held-out concept accuracy beats chance clearly."""
    from bindcore.loss import info_nce
    from bindcore.toyworld import CONCEPTS, generate_scenes

    num_train, num_test = 200, 100
    module = subject.build(seed=0)
    scenes = generate_scenes(num_train + num_test, seed=1234)
    x = torch.cat([_preprocess(subject, module, [module.render_toy(s) for s in scenes[i:i + 50]])
                   for i in range(0, len(scenes), 50)])
    x = module.to_model_input(x)
    labels = torch.tensor([s.concept for s in scenes])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        prototypes = F.normalize(torch.randn(len(CONCEPTS), module.embed_dim), dim=-1)
        targets = F.normalize(prototypes[labels] + 0.3 * torch.randn(len(scenes), module.embed_dim)
                              / math.sqrt(module.embed_dim), dim=-1)
        params = [p for p in module.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=subject.binding_lr, weight_decay=0.0)
        module.train()
        for _ in range(subject.binding_steps):
            index = torch.randint(0, num_train, (subject.binding_batch_size,))
            z = module.project(module.encode(x[index]))
            loss = info_nce(z, targets[index].to(z), 0.07)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    module.eval()
    z_test = _embed(module, x[num_train:])
    predicted = (z_test @ prototypes.to(z_test).T).argmax(dim=1)
    accuracy = float((predicted == labels[num_train:]).float().mean())
    if not accuracy >= subject.binding_min_accuracy:
        _fail(subject, f"after {subject.binding_steps} steps held-out toy-world accuracy is {accuracy:.2f} "
                       f"(chance {1 / len(CONCEPTS):.2f}, required {subject.binding_min_accuracy}); make render_toy "
                       f"show the concept clearly, or raise binding_steps/binding_lr for this config")


__all__ = ["CHECKS", "Check", "ConformanceFailure", "check_names", *(name for name in CHECKS)]
