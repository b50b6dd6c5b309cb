"""Fine-tuning: ``modalities.<name>.init``, ``train.freeze``, ``train.lora`` (recipe errors, training, saving,
loading, ``bindcore export --merge``, resume, gloo DDP), on the stub modalities; the weight-decay groups and LoRA on
bindcore's own transformer (every projection, gradient checkpointing, bf16 autocast)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import bindcore
from bindcore.errors import ConfigError
from bindcore.nn.lora import ADAPTER_CONFIG, ADAPTER_FILE, add_lora, has_lora, merge_lora
from bindcore.recipe import validate_recipe
from bindcore.testing.stubs import tiny_recipe
from bindcore.train.finetune import param_groups
from bindcore.train.trainer import train

LORA = {"rank": 2, "alpha": 4, "targets": ["trunk.*.weight"]}


def _quiet(_message: str) -> None:
    return None


@pytest.fixture
def base_run(stubs, tmp_path) -> Path:
    """A finished from-scratch run of toya with a non-default width (so a config read from it is observable)."""
    raw = tiny_recipe("toya")
    raw["modalities"]["toya"]["width"] = 24
    out = tmp_path / "base"
    train(validate_recipe(raw), out, log=_quiet)
    return out


def _finetune_recipe(base: Path, **train_settings) -> dict:
    raw = tiny_recipe("toya")
    raw["modalities"]["toya"]["init"] = str(base / "modalities" / "toya")
    raw["modalities"]["toya"]["train"].update(train_settings)
    return raw


def _problems(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_recipe(raw)
    return str(caught.value)


# -- recipe checks -------------------------------------------------------------------------------------------
def test_init_reads_the_saved_config_and_rejects_keys_that_change_shapes(base_run):
    recipe = validate_recipe(_finetune_recipe(base_run))
    assert recipe.modalities["toya"].config.width == 24  # from the saved directory, not the plugin default (32)
    assert recipe.modalities["toya"].init == base_run / "modalities" / "toya"
    allowed = _finetune_recipe(base_run)
    allowed["modalities"]["toya"]["drop_path"] = 0.3  # changes no shape: the recipe wins
    assert validate_recipe(allowed).modalities["toya"].config.drop_path == 0.3
    wrong = _finetune_recipe(base_run)
    wrong["modalities"]["toya"]["width"] = 48
    message = _problems(wrong)
    assert "modalities.toya.width: 48 contradicts the 24 of the weights in" in message


def test_init_path_errors(base_run, tmp_path):
    missing = _finetune_recipe(base_run)
    missing["modalities"]["toya"]["init"] = str(tmp_path / "nowhere")
    assert "modalities.toya.init: not found:" in _problems(missing)
    other = tiny_recipe("toyb")
    other["modalities"]["toyb"]["init"] = str(base_run / "modalities" / "toya")
    assert "modalities.toyb.init:" in (message := _problems(other)) and "holds a 'toya' modality" in message
    unset = _finetune_recipe(base_run)
    unset["modalities"]["toya"]["init"] = "$BINDCORE_NO_SUCH_VARIABLE/toya"
    assert "BINDCORE_NO_SUCH_VARIABLE, which is not set" in _problems(unset)
    empty = _finetune_recipe(base_run)
    empty["modalities"]["toya"]["init"] = 3
    assert "modalities.toya.init: expected the path" in _problems(empty)


def test_freeze_and_lora_errors_name_the_yaml_path(stubs):
    raw = tiny_recipe("toya", "toyb")
    raw["modalities"]["toya"]["train"]["freeze"] = ["blocks.0-3", "no_such_param*"]
    raw["modalities"]["toyb"]["train"]["lora"] = {"targets": ["qkv"], "rank": 0}
    message = _problems(raw)
    assert "modalities.toya.train.freeze[0] 'blocks.0-3': this modality has no trunk blocks" in message
    assert "modalities.toya.train.freeze[1] 'no_such_param*' selects no parameter" in message
    assert "modalities.toyb.train.lora.rank" in message
    raw["modalities"]["toyb"]["train"]["lora"] = {"targets": ["qkv"]}
    assert "modalities.toyb.train.lora.targets: 'qkv' selects no weight matrix" in _problems(raw)
    everything = tiny_recipe("toya")
    everything["modalities"]["toya"]["train"]["freeze"] = ["trunk", "head"]
    assert "modalities.toya.train.freeze: freezes every parameter" in _problems(everything)
    both = tiny_recipe("toya")
    both["modalities"]["toya"]["train"].update(freeze=["head"], lora=LORA)
    assert "freeze and lora together" in _problems(both)


def test_freeze_vocabulary_on_the_vit_layout():
    from bindcore.recipe.finetune import frozen_names

    names = ["encoder.cls_token", "encoder.pos_embed", "encoder.proj.weight", "encoder.stem_norm.weight",
             *(f"encoder.trunk.blocks.{i}.attn.in_proj_weight" for i in range(12)),
             *(f"encoder.trunk.blocks.{i}.norm_1.bias" for i in range(12)), "head.norm.weight", "head.proj.weight"]
    stem, problems = frozen_names(names, ["stem"])
    assert stem == {"encoder.cls_token", "encoder.pos_embed", "encoder.proj.weight", "encoder.stem_norm.weight"}
    first, _ = frozen_names(names, ["blocks.0-9"])
    assert {int(n.split(".")[3]) for n in first} == set(range(10)) and len(first) == 20
    trunk, _ = frozen_names(names, ["trunk"])
    assert set(names) - trunk == {"head.norm.weight", "head.proj.weight"}
    globbed, _ = frozen_names(names, ["encoder.trunk.blocks.*.norm_1.*"])
    assert len(globbed) == 12
    _, problems = frozen_names(names, ["blocks.3-12", "blocks.5-2"])
    assert len(problems) == 2 and "blocks 0-11" in problems[0]
    custom, _ = frozen_names(names, ["positions"], {"positions": ["encoder.pos_embed", "encoder.cls_token"]})
    assert custom == {"encoder.pos_embed", "encoder.cls_token"}


# -- weight decay groups -------------------------------------------------------------------------------------
def test_no_weight_decay_on_norms_biases_and_frozen_parameters():
    from bindcore.nn import PatchEncoder

    encoder = PatchEncoder(in_chans=1, input_size=(8, 8), patch_size=4, stride=4, width=16, depth=2, num_heads=2)
    encoder.proj.weight.requires_grad_(False)
    decay, no_decay = param_groups(encoder, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in encoder.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert "trunk.blocks.0.attn.bias_k" in exempt and "trunk.blocks.0.attn.bias_v" in exempt  # 3-D, still biases
    assert "trunk.blocks.0.norm_1.weight" in exempt and "trunk.blocks.1.mlp.fc1.bias" in exempt
    assert {"pos_embed", "cls_token"} <= exempt
    assert "trunk.blocks.0.attn.in_proj_weight" in decayed and "trunk.blocks.1.mlp.fc2.weight" in decayed
    assert "proj.weight" not in decayed | exempt  # frozen: the optimiser never sees it
    assert not any(p.ndim < 2 for p in decay["params"])


# -- training --------------------------------------------------------------------------------------------------
def test_freeze_keeps_frozen_weights_and_logs_the_counts(base_run, tmp_path):
    lines: list[str] = []
    out = tmp_path / "frozen"
    train(validate_recipe(_finetune_recipe(base_run, freeze=["trunk.0.*"])), out, log=lines.append)
    before = load_file(str(base_run / "modalities" / "toya" / "model.safetensors"))
    after = load_file(str(out / "modalities" / "toya" / "model.safetensors"))
    assert torch.equal(before["trunk.0.weight"], after["trunk.0.weight"])
    assert torch.equal(before["trunk.0.bias"], after["trunk.0.bias"])
    assert not torch.equal(before["trunk.3.weight"], after["trunk.3.weight"])
    assert not torch.equal(before["head.weight"], after["head.weight"])
    total = sum(v.numel() for v in before.values())
    trainable = total - before["trunk.0.weight"].numel() - before["trunk.0.bias"].numel()
    assert f"toya: trainable {trainable:,} of {total:,} parameters" in lines
    assert any(line.startswith("toya: weights from ") for line in lines)


def test_lora_run_saves_adapters_loads_them_and_exports_merged(base_run, tmp_path):
    from click.testing import CliRunner

    from bindcore.cli import cli

    out = tmp_path / "lora"
    lines: list[str] = []
    train(validate_recipe(_finetune_recipe(base_run, lora=LORA)), out, log=lines.append)
    saved = out / "modalities" / "toya"
    assert (saved / ADAPTER_FILE).is_file() and (saved / ADAPTER_CONFIG).is_file()
    config = json.loads((saved / ADAPTER_CONFIG).read_text())
    assert config["rank"] == 2 and config["weights"] == ["trunk.0.weight", "trunk.3.weight"]
    # The base stays the init's, bit for bit; what trained is in the adapters.
    base_before = load_file(str(base_run / "modalities" / "toya" / "model.safetensors"))
    base_after = load_file(str(saved / "model.safetensors"))
    assert base_before.keys() == base_after.keys()
    assert all(torch.equal(base_before[k], base_after[k]) for k in base_before)
    adapter = load_file(str(saved / ADAPTER_FILE))
    assert adapter["trunk.0.weight.lora_B"].abs().max() > 0
    trainable = sum(v.numel() for v in adapter.values())
    assert f"toya: trainable {trainable:,} of {trainable + sum(v.numel() for v in base_before.values()):,} " \
           f"parameters" in lines

    adapted = bindcore.load_modality(saved)
    plain = bindcore.load_modality(base_run / "modalities" / "toya")
    assert has_lora(adapted) and not has_lora(plain)
    x = torch.randn(8, 16)
    with torch.no_grad():
        assert (adapted(x) - plain(x)).abs().max() > 1e-3  # the adapters act on what load_modality returns

    result = CliRunner().invoke(cli, ["export", str(out), "--merge", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    merged_dir = tmp_path / "merged" / "toya"
    assert not (merged_dir / ADAPTER_FILE).exists() and not (merged_dir / ADAPTER_CONFIG).exists()
    assert (tmp_path / "merged" / "vision").is_dir() and (tmp_path / "merged" / "text").is_dir()
    merged = bindcore.load_modality(merged_dir)
    assert not has_lora(merged)
    assert set(load_file(str(merged_dir / "model.safetensors"))) == set(base_before)
    items = [x[i].numpy() for i in range(8)]
    torch.testing.assert_close(merged.embed(items), adapted.embed(items), atol=1e-5, rtol=0)
    again = CliRunner().invoke(cli, ["export", str(out), "--merge", str(tmp_path / "merged")])
    assert again.exit_code != 0 and "already exists" in again.output


def test_init_from_a_run_checkpoint_and_from_a_lora_run(base_run, tmp_path):
    from bindcore.train.checkpoint import list_checkpoints, load_checkpoint

    checkpoint = list_checkpoints(base_run / "checkpoints")[0]
    raw = _finetune_recipe(base_run, max_steps=1, lr=1e-9)
    raw["modalities"]["toya"]["init"] = str(checkpoint)
    out = tmp_path / "from-checkpoint"
    train(validate_recipe(raw), out, log=_quiet)
    heads = load_checkpoint(checkpoint)["heads"]["toya"]
    state = load_file(str(out / "modalities" / "toya" / "model.safetensors"))
    torch.testing.assert_close(state["trunk.0.weight"], heads["modality.trunk.0.weight"], atol=1e-6, rtol=0)
    # A LoRA run's directory and checkpoints start the next run from the merged weights.
    lora_run = tmp_path / "lora"
    train(validate_recipe(_finetune_recipe(base_run, lora=LORA)), lora_run, log=_quiet)
    merged = merge_lora(bindcore.load_modality(lora_run / "modalities" / "toya")).state_dict()
    for init in (lora_run / "modalities" / "toya", list_checkpoints(lora_run / "checkpoints")[-1]):
        chained = _finetune_recipe(base_run, max_steps=1, lr=1e-9)
        chained["modalities"]["toya"]["init"] = str(init)
        target = tmp_path / f"chained-{Path(init).name}"
        train(validate_recipe(chained), target, log=_quiet)
        state = load_file(str(target / "modalities" / "toya" / "model.safetensors"))
        torch.testing.assert_close(state["trunk.0.weight"], merged["trunk.0.weight"], atol=1e-5, rtol=0)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("settings", [{"lora": {**LORA, "dropout": 0.2}}, {"freeze": ["trunk.0.*"]}],
                         ids=["lora", "freeze"])
def test_resume_after_an_interruption_is_bit_identical(base_run, tmp_path, settings):
    raw = _finetune_recipe(base_run, **copy.deepcopy(settings))
    raw["run"]["checkpoint_every"] = 4
    train(validate_recipe(raw), tmp_path / "reference", log=_quiet)

    def stop_after_a_checkpoint(step: int, _batch: dict) -> None:
        if step == 6:
            raise _Stop

    with pytest.raises(_Stop):
        train(validate_recipe(raw), tmp_path / "resumed", log=_quiet, step_hook=stop_after_a_checkpoint)
    assert not (tmp_path / "resumed" / "modalities").exists()
    train(validate_recipe(raw), tmp_path / "resumed", log=_quiet)
    for file in ("model.safetensors", *((ADAPTER_FILE,) if "lora" in settings else ())):
        a = load_file(str(tmp_path / "reference" / "modalities" / "toya" / file))
        b = load_file(str(tmp_path / "resumed" / "modalities" / "toya" / file))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{file}: {key} differs after resume"


def test_lora_and_freeze_under_gloo_ddp_match_one_process(base_run, tmp_path):
    import socket

    import torch.multiprocessing as mp

    from bindcore.testing.ddp import stub_recipe_ddp_worker

    raw = tiny_recipe("toya", "toyb", steps_epochs=2)
    raw["modalities"]["toya"]["init"] = str(base_run / "modalities" / "toya")
    raw["modalities"]["toya"]["width"] = 24
    raw["modalities"]["toya"]["train"]["lora"] = LORA
    raw["modalities"]["toyb"]["train"]["freeze"] = ["trunk.0.*"]
    train(validate_recipe(raw), tmp_path / "single", log=_quiet)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(stub_recipe_ddp_worker, args=(2, port, str(tmp_path / "ddp"), raw), nprocs=2, join=True)
    for name, file in (("toya", ADAPTER_FILE), ("toya", "model.safetensors"), ("toyb", "model.safetensors")):
        a = load_file(str(tmp_path / "single" / "modalities" / name / file))
        b = load_file(str(tmp_path / "ddp" / "modalities" / name / file))
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=2e-4, rtol=1e-3)
    adapter = load_file(str(tmp_path / "ddp" / "modalities" / "toya" / ADAPTER_FILE))
    assert adapter["trunk.0.weight.lora_B"].abs().max() > 0


# -- LoRA on bindcore's transformer --------------------------------------------------------------------------
def _trunk() -> torch.nn.Module:
    from bindcore.nn import Transformer

    torch.manual_seed(0)
    return Transformer(16, 2, 2, add_bias_kv=True)


def _randomise_adapters(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("lora_B"):
                param.normal_(0, 0.05)


@pytest.mark.parametrize("target", ["qkv", "out", "fc1", "fc2"])
def test_lora_reaches_each_projection_in_training_and_inference(target):
    trunk = _trunk()
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        reference_eval = trunk.eval()(x)
    assert add_lora(trunk, [target], rank=2, alpha=2) and len(list(p for p in trunk.parameters()
                                                                     if p.requires_grad)) == 4
    with torch.no_grad():
        torch.testing.assert_close(trunk(x), reference_eval)  # B starts at zero: an unchanged model
        _randomise_adapters(trunk)
        adapted_eval = trunk.eval()(x)  # the inference path reads .weight into bindcore's linear
        adapted_train = trunk.train()(x)
    assert (adapted_eval - reference_eval).abs().max() > 1e-3
    torch.testing.assert_close(adapted_train, adapted_eval, atol=1e-5, rtol=1e-5)
    merged = merge_lora(copy.deepcopy(trunk)).eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(x), adapted_eval, atol=1e-5, rtol=1e-5)


def test_lora_with_gradient_checkpointing_and_bf16_autocast():
    from bindcore.train.trainer import enable_grad_checkpointing

    trunk = _trunk()
    add_lora(trunk, ["qkv", "out", "fc1", "fc2"], rank=2, alpha=2)
    _randomise_adapters(trunk)
    trunk.train()
    x = torch.randn(3, 5, 16)

    def gradients() -> list[torch.Tensor]:
        trunk.zero_grad()
        trunk(x).square().sum().backward()
        return [p.grad.clone() for p in trunk.parameters() if p.requires_grad]

    plain = gradients()
    assert all(g.abs().max() > 0 for g in plain)  # every adapter (A and B) gets a gradient
    enable_grad_checkpointing(trunk)
    for a, b in zip(plain, gradients(), strict=True):
        torch.testing.assert_close(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gradients()
    for a, b in zip(plain, low, strict=True):
        assert torch.isfinite(b).all()
        assert torch.nn.functional.cosine_similarity(a.flatten(), b.float().flatten(), dim=0) > 0.98


def test_a_finished_finetune_run_loads_after_its_init_moved_and_with_a_relative_init(base_run, tmp_path):
    """``bindcore eval RUN`` and ``bindcore benchmark`` re-read the run's recipe: a relative ``init`` resolves against
    where the recipe was (not the run directory), and a finished run no longer needs its ``init`` weights."""
    import shutil

    import yaml

    from bindcore.recipe import load_recipe
    from bindcore.run_setup import RunSetup

    recipes = tmp_path / "recipes" / "finetune"
    recipes.mkdir(parents=True)
    raw = _finetune_recipe(base_run, max_steps=2)
    raw["modalities"]["toya"]["init"] = "../../base/modalities/toya"  # relative to the recipe file
    (recipes / "ft.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs" / "deeper" / "ft"  # resolved against the run directory it would not be found
    train(load_recipe(recipes / "ft.yaml"), out, log=_quiet)

    again = RunSetup.from_run_dir(out, log=_quiet)
    assert again.recipe.modalities["toya"].init.resolve() == (base_run / "modalities" / "toya").resolve()
    assert again.recipe.modalities["toya"].config.width == 24  # read from the init's saved config

    shutil.move(str(base_run), str(tmp_path / "moved"))
    moved = RunSetup.from_run_dir(out, log=_quiet)
    assert moved.recipe.modalities["toya"].config.width == 24  # now from the run's own trained modality
    assert moved.recipe.modalities["toya"].init.resolve() == (out / "modalities" / "toya").resolve()
    assert set(moved.load_modalities()) == {"toya"}
    unfinished = tmp_path / "runs" / "unfinished"
    shutil.copytree(out, unfinished)
    shutil.rmtree(unfinished / "modalities")
    with pytest.raises(ConfigError, match="init"):  # nothing to read the config from: the error names the key
        RunSetup.from_run_dir(unfinished, log=_quiet)
