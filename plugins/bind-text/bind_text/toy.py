"""Toy-world captions: the scene's concept in one of a few CLIP-style templates, chosen per scene."""

from __future__ import annotations

from bindcore.toyworld import Scene

#: ``{}`` is the concept name, ``{a}`` its article.
TEMPLATES: tuple[str, ...] = (
    "a photo of {a} {}.",
    "{a} {} in the scene.",
    "a picture of the {}.",
    "there is {a} {} here.",
    "a close-up photo of {a} {}.",
    "an image showing {a} {}.",
)


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def caption(concept_name: str, template: str) -> str:
    return template.format(concept_name, a=article(concept_name))


def render_caption(scene: Scene) -> str:
    """A caption of the scene's concept; the template is drawn from ``scene.rng("text")`` (deterministic)."""
    template = TEMPLATES[int(scene.rng("text").integers(len(TEMPLATES)))]
    return caption(scene.name, template)
