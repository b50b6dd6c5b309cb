"""Prompt templates for zero-shot classification from class names."""

DEFAULT_TEMPLATES = (
    "a photo of a {}.", "a bad photo of a {}.", "a photo of the {}.", "a close-up photo of a {}.",
    "a bright photo of a {}.", "a dark photo of the {}.", "a photo of a small {}.", "a photo of a big {}.",
    "a cropped photo of the {}.", "a blurry photo of a {}.", "a rendering of a {}.", "itap of a {}.",
    "a good photo of the {}.", "a low resolution photo of the {}.", "art of the {}.", "a sketch of a {}.",
    "a drawing of a {}.", "a photo of one {}.", "a sculpture of a {}.", "a toy {}.",
)  # a subset of CLIP's ImageNet prompt templates



def clip_imagenet_templates() -> tuple[str, ...]:
    """CLIP's 80 ImageNet prompt templates as ``{}`` strings: what ImageBind's zero-shot evaluation uses for every
    modality (paper App. B). Taken from open_clip, which ships them as functions of the class name."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(template("{}") for template in OPENAI_IMAGENET_TEMPLATES)


__all__ = ["DEFAULT_TEMPLATES", "clip_imagenet_templates"]
