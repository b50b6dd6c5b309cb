"""Options of the depth modality: encoder sizes (ImageBind's depth ViT-S by default) and every
preprocessing choice. See the plugin README for why each default is what it is."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bindcore.imageio import DEFAULT_MAX_PIXELS
from bindcore.patch_modality import PatchModalityConfig

#: Kinect v1 colour-camera focal length in pixels (NYU Depth v2 / SUN RGB-D ``kv1``), the commonest sensor
#: in SUN RGB-D, which ImageBind trained depth on.
KINECT_V1_FOCAL_LENGTH = 518.857901
#: Kinect baseline in metres used by Omnivore's SUN RGB-D depth→disparity code (0.095 for RealSense/Xtion).
KINECT_BASELINE = 0.075
#: Omnivore's disparity normalisation: clamp to [0.01, 75], divide by 75, then standardise.
OMNIVORE_DISPARITY_MAX = 75.0
OMNIVORE_DISPARITY_MIN = 0.01
OMNIVORE_MEAN = 0.0418
OMNIVORE_STD = 0.0295

#: Options for the toy world: ``render_toy`` disparities (default camera) have mean ≈ 20 and std ≈ 18.
#: Zero-centred inputs let tiny encoders bind several times faster than the large Omnivore offset does.
TOY_WORLD_OPTIONS = {"normalization": "standardize", "norm_mean": 20.0, "norm_std": 18.0}

#: Preprocessing that reproduces the tensors the reference parity vectors were computed from:
#: metres as stored, zeros (invalid) left in place, no normalisation.
REFERENCE_INPUT_OPTIONS = {"representation": "depth", "infill": "none", "normalization": "none"}


class DepthConfig(PatchModalityConfig):
    """Depth modality options. Sizes default to ImageBind's depth encoder (ViT-S/16: 384 wide, 12 layers,
    8 heads, 224 px, 1024-d output)."""

    # encoder (ImageBind depth defaults)
    width: int = Field(384, ge=1, description="transformer width")
    num_heads: int = Field(8, ge=1, description="attention heads")

    # input decoding
    png_metres_per_unit: float = Field(0.001, gt=0, description="metres per integer unit in depth PNGs (mm)")
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=1, description="largest depth file decoded (pixels, from its header): 16 MP is over "
                                             "three times the largest depth sensors' frames and bounds one item's "
                                             "working set near 1 GB; larger files are refused before decoding")
    nonfinite_as_invalid: bool = Field(
        False, description="treat NaN/Inf depth as invalid (0) pixels instead of rejecting the item")

    # depth → model input
    representation: Literal["disparity", "depth"] = Field(
        "disparity", description="feed disparity = focal_length*baseline/depth (paper) or depth in metres")
    focal_length: float = Field(KINECT_V1_FOCAL_LENGTH, gt=0, description="default focal length, pixels")
    baseline: float = Field(KINECT_BASELINE, gt=0, description="default stereo/projector baseline, metres")
    min_depth: float = Field(0.01, gt=0, description="valid depths are clipped to >= this (metres)")
    max_depth: float = Field(50.0, gt=0, description="valid depths are clipped to <= this (metres)")
    infill: Literal["nearest", "none"] = Field(
        "nearest", description="fill invalid (0) pixels with the nearest valid pixel's value, or leave 0")
    normalization: Literal["omnivore", "none", "standardize"] = Field(
        "omnivore", description="omnivore: clamp disparity to [0.01, 75], /75, then (x-0.0418)/0.0295; "
                                "standardize: (x - norm_mean) / norm_std in the representation's units")
    norm_mean: float = Field(OMNIVORE_MEAN * OMNIVORE_DISPARITY_MAX,
                             description="mean of normalization='standardize' (default: Omnivore's, in disparity)")
    norm_std: float = Field(OMNIVORE_STD * OMNIVORE_DISPARITY_MAX, gt=0,
                            description="std of normalization='standardize' (default: Omnivore's, in disparity)")

    @model_validator(mode="after")
    def _check_depth_options(self) -> DepthConfig:
        if self.min_depth >= self.max_depth:
            raise ValueError(f"min_depth {self.min_depth} must be below max_depth {self.max_depth}")
        if self.normalization == "omnivore" and self.representation != "disparity":
            raise ValueError("normalization='omnivore' is defined for disparity; with representation='depth' "
                             "use normalization='none'")
        return self
