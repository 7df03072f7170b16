"""clipvil: CLIP-ViL vision-and-language navigation toolkit (pip install -e .)."""
from setuptools import find_packages, setup

setup(
    name="clipvil",
    version="0.1.0",
    description=(
        "Vision-and-language navigation toolkit: a pure-NumPy Matterport3D navigation-graph simulator "
        "with exact MatterSim semantics, R2R/RxR data and metrics, CLIP encoders and EnvDrop agents."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["vln", "vln.*", "envs", "envs.*", "agents", "agents.*", "features", "features.*",
                                    "vlcorpus", "vlcorpus.*", "training", "training.*", "captioning",
                                    "captioning.*", "vqa", "vqa.*", "pretraining", "pretraining.*"]),
    package_data={"vln.replay": ["static/*"]},
    install_requires=[
        # torch/torchvision: the one pair that installs from this machine's local wheels.
        "torch==2.14.1",
        "torchvision==0.29.1",
        "numpy>=1.24",
        "scipy>=1.10",
        "networkx>=3.0",
        "gymnasium>=1.0,<2",
        "open_clip_torch>=2.24",
        "stanza>=1.7",
        "tensorboard>=2.14",
        "tqdm>=4.60",
        "filelock>=3.12",  # the last extraction rank merges the image grid store under a file lock
        "pillow>=9.0",
        "regex>=2023.0",
        "pycocoevalcap>=1.2",  # BLEU of the speaker (and the captioning metrics)
        "filelock>=3.12",  # build locks of shared caches (vln/locks.py)
        # WordPiece of CLIP-ViLp (pretraining/wordpiece.py); pinned: the deterministic-training
        # workaround there depends on the trainer's internals (huggingface/tokenizers#1794)
        "tokenizers==0.23.3",
    ],
    extras_require={
        # playwright drives Debian's /usr/bin/chromium in the replay viewer's browser test
        # (never `playwright install`); the test skips when either is missing.
        "dev": ["pytest>=8", "pytest-xdist>=3", "playwright>=1.40"],
        "rl": ["stable-baselines3==2.9.2", "sb3-contrib==2.9.2"],
        # the cocotalk label h5 layout of the captioning data (optional; arrays otherwise)
        "h5": ["h5py>=3.8"],
        # LMDB layout of image grid features (features.grid_formats); its test skips without it.
        "lmdb": ["lmdb>=1.4"],
    },
    entry_points={},
)
