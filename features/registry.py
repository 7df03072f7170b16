"""The visual-encoder registry: one :class:`EncoderSpec` per name, shared by every task.

A new encoder is one :func:`register_encoder` call. Specs are plain data: ``import features``
never imports torch; :func:`features.encoders.get_encoder` builds the model lazily from the
spec's ``builder`` entry point (``"module:function"``, as Gymnasium's ``entry_point``).

Every image encoder renders each of the 36 views directly at ``render_size`` with vertical
field of view ``render_vfov``. For CLIP that is exactly the original pipeline's geometry:
MatterSim rendered 640x480 at VFOV 60 degrees and CLIP's preprocessing resized the shorter side
to the input size and centre-cropped a square, i.e. a square view with 60 degrees of vertical
*and* horizontal field of view; rendering that square at the input size skips the resize.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from vln.registry import Registry

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Vertical field of view of the R2R / EnvDrop views: 60 degrees, in radians.
R2R_VFOV = math.radians(60.0)
#: Environment variable naming a folder of local weight files (``EncoderSpec.weights_file``).
WEIGHTS_DIR_ENV = "CLIPVIL_WEIGHTS_DIR"


@dataclass(frozen=True)
class EncoderSpec:
    """Everything needed to build an encoder and to recognise the features it made.

    Attributes:
        name: registry name (``clip_r50x4``).
        family: ``"clip"``, ``"imagenet"`` (pixels in) or ``"annotation"`` (reads annotations,
            not pixels).
        architecture: open_clip model name / torchvision constructor name.
        weights_tag: the default pretrained tag (``"openai"``, ``"IMAGENET1K_V1"``).
        weights_file: the file name expected under ``$CLIPVIL_WEIGHTS_DIR`` for offline use.
        input_size: (height, width) in pixels the network takes.
        render_size: (height, width) each view is rendered at (equal to ``input_size`` where the
            original preprocessing was a resize + centre crop).
        render_vfov: vertical field of view of the rendered views, radians.
        mean, std: per-channel RGB normalisation of [0, 1] pixels.
        pooled_dim: length of the pooled vector per view.
        grid_dim: channels of the grid feature map.
        grid_stride: input pixels per grid cell.
        l2_normalize: whether pooled vectors are L2-normalised (CLIP-ViL does for CLIP).
        builder: ``"module:function"`` building the encoder from the spec.
        options: extra builder options (JSON-serialisable).
    """

    name: str
    family: str
    architecture: str
    weights_tag: str | None
    weights_file: str | None
    input_size: tuple
    render_size: tuple
    render_vfov: float
    mean: tuple
    std: tuple
    pooled_dim: int
    grid_dim: int | None
    grid_stride: int | None
    l2_normalize: bool = False
    builder: str = "features.encoders:build_open_clip"
    options: dict = field(default_factory=dict)

    @property
    def needs_pixels(self) -> bool:
        """False for annotation encoders, which never look at skybox images."""
        return self.family != "annotation"

    def to_dict(self) -> dict:
        """JSON-ready record of the spec (stored in every feature file's metadata)."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["render_size"] = list(self.render_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderSpec":
        """The spec of a :meth:`to_dict` record (a spec file, a store's ``encoder`` metadata)."""
        d = dict(d)
        for key in ("input_size", "render_size", "mean", "std"):
            d[key] = tuple(d[key])
        return cls(**d)


ENCODERS: Registry[EncoderSpec] = Registry("encoder")


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` to :data:`ENCODERS` under ``spec.name`` (duplicates raise)."""
    return ENCODERS.register(spec.name, spec)


def get_spec(name: str) -> EncoderSpec:
    """The spec registered as ``name``, or read from a spec file ``name`` ending in ``.json`` (a
    custom architecture: :func:`load_spec_file`); raises ``NameNotFound`` with a "did you mean"."""
    if str(name).endswith(".json"):
        return load_spec_file(name)
    return ENCODERS.get(name)


def load_spec_file(path) -> EncoderSpec:
    """A spec from a JSON file holding :meth:`EncoderSpec.to_dict` (e.g. a small open_clip CLIP
    whose ``options`` give ``embed_dim`` / ``vision_cfg`` / ``text_cfg``). It is not registered:
    the file is the name (stores record its ``name`` and ``architecture``).

    Raises:
        DataFormatError: unreadable file, or a field missing or of the wrong type.
    """
    import json

    from vln.errors import DataFormatError

    try:
        return EncoderSpec.from_dict(json.loads(open(path).read()))
    except OSError as e:
        raise DataFormatError(path, None, None, f"cannot be read as an encoder spec ({e})") from None
    except (ValueError, TypeError, KeyError) as e:
        raise DataFormatError(path, None, None, f"is not an encoder spec (EncoderSpec.to_dict() JSON): {e}") from None


def _clip(name, arch, size, pooled, grid, stride, weights_file):
    return EncoderSpec(
        name=name, family="clip", architecture=arch, weights_tag="openai", weights_file=weights_file,
        input_size=(size, size), render_size=(size, size), render_vfov=R2R_VFOV,
        mean=CLIP_MEAN, std=CLIP_STD, pooled_dim=pooled, grid_dim=grid, grid_stride=stride,
        l2_normalize=True, builder="features.encoders:build_open_clip",
    )


# OpenAI's CLIP weights were trained with QuickGELU: the "-quickgelu" configs match them.
register_encoder(_clip("clip_r50", "RN50-quickgelu", 224, 1024, 2048, 32, "RN50.pt"))
register_encoder(_clip("clip_r101", "RN101-quickgelu", 224, 512, 2048, 32, "RN101.pt"))
register_encoder(_clip("clip_r50x4", "RN50x4-quickgelu", 288, 640, 2560, 32, "RN50x4.pt"))
register_encoder(_clip("clip_vit_b32", "ViT-B-32-quickgelu", 224, 512, 768, 32, "ViT-B-32.pt"))
# R2R's ResNet-152 features fed the whole 640x480 view to the fully convolutional network and
# mean-pooled the last map, so the view is rendered at that size, not cropped.
register_encoder(EncoderSpec(
    name="imagenet_r152", family="imagenet", architecture="resnet152", weights_tag="IMAGENET1K_V1",
    weights_file="resnet152-394f9c45.pth", input_size=(480, 640), render_size=(480, 640),
    render_vfov=R2R_VFOV, mean=IMAGENET_MEAN, std=IMAGENET_STD, pooled_dim=2048, grid_dim=2048,
    grid_stride=32, l2_normalize=False, builder="features.encoders:build_torchvision_resnet",
))
register_encoder(EncoderSpec(
    name="synthetic_semantic", family="annotation", architecture="class-coverage-embedding",
    weights_tag="seeded", weights_file=None, input_size=(0, 0), render_size=(0, 0),
    render_vfov=R2R_VFOV, mean=(), std=(), pooled_dim=512, grid_dim=None, grid_stride=None,
    l2_normalize=True, builder="features.semantic:build_semantic_encoder", options={"seed": 0},
))
register_encoder(EncoderSpec(
    name="synthetic_semantic_grid", family="annotation", architecture="segment-coverage-grid",
    weights_tag="seeded", weights_file=None, input_size=(0, 0), render_size=(0, 0), render_vfov=R2R_VFOV,
    mean=(), std=(), pooled_dim=73, grid_dim=73, grid_stride=32, l2_normalize=False,
    builder="features.semantic_grid:build_semantic_grid_encoder", options={"seed": 0, "instance_dim": 16},
))  # 73 = 57 classes of vln.synthetic.vocab.CLASSES + a 16-d instance code (features/semantic_grid.py)
