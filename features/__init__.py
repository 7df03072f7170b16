"""Visual encoders, panoramic rendering, feature extraction and feature stores.

``import features`` stays light (no torch): the registry and the stores are NumPy only;
:func:`get_encoder` and the extraction pipeline import torch when first used.

Default location: the features of a data directory live in
``<data_dir>/features/<encoder>.feats`` (:func:`default_store_path`); make them with
``python scripts/extract_features.py --encoder <name> --scans-dir <skybox root>
--connectivity <dir> --out <data_dir>/features/<name>.feats``. Weight files and where they are
looked for: :mod:`features.weights`; the encoder record every store and checkpoint keeps, and the
check before features are used: :mod:`features.provenance`.
"""
from __future__ import annotations

from .registry import ENCODERS, EncoderSpec, get_spec, register_encoder
from .store import (
    FeatureStore,
    convert_feature_store,
    default_store_path,
    open_feature_store,
    write_feature_store,
)

__all__ = [
    "ENCODERS", "EncoderSpec", "get_spec", "register_encoder", "get_encoder",
    "FeatureStore", "open_feature_store", "write_feature_store", "convert_feature_store", "default_store_path",
]


def __getattr__(name):
    if name == "get_encoder":
        from .encoders import get_encoder

        return get_encoder
    raise AttributeError(f"module 'features' has no attribute {name!r}")
