"""The text modality on the anchor's text tower: embeddings, input errors, config, save/load, toy captions."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from bind_text import TextModality

import bindcore
from bindcore.anchor import tiny_anchor_config
from bindcore.errors import ConfigError, InputError
from bindcore.testing.toy import nearest_centroid_accuracy
from bindcore.toyworld import CONCEPTS, generate_scenes

STRINGS = ["a dog.", "a photo of a car", "the sound of rain"]


def test_embed_goes_through_the_anchor_text_tower(text) -> None:
    z = text.embed(STRINGS)
    assert z.shape == (3, 16) and text.embed_dim == 16
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(3))
    ids = text.preprocess(STRINGS)
    h = text.encode(ids)
    assert h.shape == (3, 32)  # EOT-pooled trunk features, before the projection
    torch.testing.assert_close(text.project(h), text.anchor.encode_text(ids), rtol=0, atol=1e-6)
    assert not torch.equal(z[0], z[1])


def test_frozen_and_stateless(text) -> None:
    assert TextModality.trainable is False
    assert list(text.parameters()) == [] and text.state_dict() == {}
    text.train()
    assert not text.anchor.training


@pytest.mark.parametrize("item", [b"bytes", None, 3, ["nested"], float("nan")])
def test_non_strings_are_rejected_naming_the_item(text, item) -> None:
    with pytest.raises(InputError, match="text must be a str") as info:
        text.preprocess(["fine", item])
    assert info.value.item is item


def test_a_bare_string_must_be_wrapped(text) -> None:
    with pytest.raises(InputError, match="wrap it in a list"):
        text.preprocess("a dog")


def test_context_length_follows_a_shorter_anchor() -> None:
    arch = tiny_anchor_config(embed_dim=8, image_size=16, patch_size=8, width=16, layers=1, heads=2,
                              context_length=16)
    short = TextModality(anchor={"arch": arch})
    ids = short.preprocess([" ".join(["dog"] * 40), "a dog"])
    assert ids.shape == (2, 16) and ids[0, -1] == 49407
    assert short.embed(["a dog"]).shape == (1, 8)
    with pytest.raises(ConfigError, match="at most 16"):
        TextModality(anchor={"arch": arch}, context_length=77)


def test_small_vocabulary_anchor_is_refused() -> None:
    arch = tiny_anchor_config(embed_dim=8, image_size=16, patch_size=8, width=16, layers=1, heads=2, vocab_size=1000)
    with pytest.raises(ConfigError, match="49408"):
        TextModality(anchor={"arch": arch})


def test_save_and_load_rebuild_the_same_embeddings(text, tmp_path) -> None:
    loaded = bindcore.load_modality(text.save(tmp_path / "text"))
    assert isinstance(loaded, TextModality)
    assert torch.equal(loaded.embed(STRINGS), text.embed(STRINGS))


def test_toy_captions_name_the_concept_deterministically(text) -> None:
    scenes = generate_scenes(60, seed=3)
    captions = [text.render_toy(s) for s in scenes]
    assert captions == [text.render_toy(s) for s in scenes]
    for scene, caption in zip(scenes, captions, strict=True):
        assert CONCEPTS[scene.concept] in caption
    assert len(set(captions)) > len(CONCEPTS)  # several templates in use
    assert "an engine" in " ".join(captions) or "engine" not in " ".join(captions)
    assert text.render_toy(dataclasses.replace(scenes[0], seed=scenes[0].seed)) == captions[0]
    templates_seen = {c.replace(s.name, "{}") for s, c in zip(scenes, captions, strict=True)}
    assert len(templates_seen) >= 3


def test_toy_captions_are_separable_by_nearest_centroid(text) -> None:
    # Non-learned check: token-id bags of captions cluster by concept (the concept word is always there).
    scenes = generate_scenes(200, seed=4)
    ids = text.preprocess([text.render_toy(s) for s in scenes])
    bags = torch.zeros(len(scenes), 49408).scatter_(1, ids, 1.0)
    labels = torch.tensor([s.concept for s in scenes])
    accuracy = nearest_centroid_accuracy(bags[:150], labels[:150], bags[150:], labels[150:])
    assert accuracy >= 0.7, f"nearest-centroid accuracy {accuracy:.2f} (chance 0.10)"


def test_registered_through_the_entry_point() -> None:
    assert "text" in bindcore.list_modalities()
    assert bindcore.modality_class("text") is TextModality
