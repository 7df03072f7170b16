"""Training arguments as a dataclass with the paper's defaults.

The command line is generated from it by :func:`training.config.parse_config`. Fields marked
``may_change_on_resume`` may be given a new value when a run resumes (``--iters`` to train longer,
the device, how often it logs and saves); every other setting stays the one in the run's
``params.json``, and a differing flag is refused.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from training.config import flag_name
from vln.errors import VLNError

#: metadata of the fields that may differ from the saved settings when a run resumes.
MAY_CHANGE = {"may_change_on_resume": True}


class InvalidSettingError(VLNError, ValueError):
    """A training setting outside its range (the message names the flag)."""


#: --angle-harmonics' upper bound: the 2K + 2 channels [sin kh, cos kh ..., sin e, cos e] fit in the 128
MAX_ANGLE_HARMONICS = 63


def max_angle_harmonics(candidate_distance: bool = False) -> int:
    """The largest K whose block fits the 128 angle channels: 2K + 2 channels, + 1 with the candidate distance."""
    return MAX_ANGLE_HARMONICS - int(candidate_distance)


#: Settings only some modes read: field -> those modes. Typing one for another mode is refused
#: (:meth:`TrainConfig.check_given`) rather than silently ignored; its default never is.
MODE_ONLY = {
    "speaker_iters": ("bt",), "aug_paths": ("bt",), "aug_min_edges": ("bt",), "aug_max_edges": ("bt",),
    "env_dropout": ("bt",),
    "speaker_lr": ("speaker", "bt"), "speaker_dropout": ("speaker", "bt"), "speaker_env_dropout": ("speaker", "bt"),
    "speaker_feature_dropout": ("speaker", "bt"),
    "max_decode_length": ("speaker", "bt"),
    "weight_decay": ("follower", "bt"), "label_smoothing": ("follower", "bt"), "candidate_distance": ("follower", "bt"),
    "candidate_lookahead": ("follower", "bt"),
}


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (defaults: R2R-EnvDrop / CLIP-ViL)."""

    features: str = field(default="clip_r50x4", metadata={"help": "encoder name (store <data-dir>/features/<name>.feats), a store path, or 'none' for zero visual features"})
    dataset: str = field(default="synthetic", metadata={"help": "r2r, rxr or synthetic", "choices": ("r2r", "rxr", "synthetic")})
    data_dir: str | None = field(default=None, metadata={"help": "data root (default: the synthetic world, generated if missing)"})
    mode: str = field(default="follower", metadata={"help": "what to train: the follower, the speaker, or the follower with back-translation (bt)", "choices": ("follower", "speaker", "bt")})
    iters: int = field(default=80000, metadata={"help": "training iterations (one IL batch + one RL batch each)", **MAY_CHANGE})
    batch_size: int = field(default=64, metadata={"help": "episodes per batch"})
    lr: float = field(default=1e-4, metadata={"help": "follower learning rate (RMSprop)"})
    lr_schedule: str = field(default="constant", metadata={"help": "follower learning-rate schedule over --iters: 'constant' (EnvDrop) or 'cosine' (from --lr down to 0 at --iters; a resumed run that changes --iters follows the new horizon)", "choices": ("constant", "cosine")})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 weight decay of the follower (RMSprop's weight_decay: wd * weight added to every clipped gradient; 0: off, as EnvDrop)"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing s of the follower's IL loss over each step's candidates: (1 - s) * cross-entropy + s * the mean of -log p over the candidates (0: off, as EnvDrop)"})
    speaker_lr: float = field(default=1e-4, metadata={"help": "speaker learning rate (Adam)"})
    ml_weight: float | None = field(default=None, metadata={"help": "IL weight (default 0.2 R2R, 0.4 RxR)"})
    aug_ml_weight: float = field(default=0.6, metadata={"help": "IL weight on augmented batches (bt, --aug-data)"})
    feedback: str = field(default="sample", metadata={"help": "'sample' = IL + A2C, 'teacher' = IL only", "choices": ("sample", "teacher")})
    il_feedback: str = field(default="teacher", metadata={"help": "how the IL batch moves: 'teacher' forcing (EnvDrop), or 'sample' from the policy with the shortest-path action to the goal as the label at each visited viewpoint (with --feedback sample the A2C loss comes from the same rollout: one rollout per batch)", "choices": ("teacher", "sample")})
    follower_env_dropout: float = field(default=0.0, metadata={"help": "environmental dropout rate on the real training batches (one mask per episode, see --env-dropout-per; 0: off, as EnvDrop)"})
    gamma: float = field(default=0.9, metadata={"help": "discount of the A2C returns"})
    entropy_coef: float = field(default=0.01, metadata={"help": "entropy bonus"})
    hidden: int = field(default=512, metadata={"help": "follower/speaker LSTM hidden size (EnvDrop 512)"})
    word_embedding: int = field(default=256, metadata={"help": "word embedding size (EnvDrop 256)"})
    action_embedding: int = field(default=64, metadata={"help": "previous-action embedding size (EnvDrop 64)"})
    dropout: float = field(default=0.5, metadata={"help": "dropout of the follower"})
    feature_dropout: float = field(default=0.3, metadata={"help": "follower feature dropout (visual channels only)"})
    sub_out: str = field(default="tanh", metadata={"help": "the follower decoder's first state: tanh of the bridged final encoder states, or of the bridged element-wise max of the encoder's outputs (EnvDrop's --subout; the EnvDrop and CLIP-ViL run scripts pass max)", "choices": ("tanh", "max")})
    angle_harmonics: int = field(default=1, metadata={"help": "heading harmonics K in the angle channels the follower's decoder and a new speaker's encoder read (views, candidates, actions): [sin kh, cos kh for k = 1..K, sin e, cos e] tiled to 128, so a candidate's score can prefer a band of headings (1: EnvDrop's [sin h, cos h, sin e, cos e] * 32; the feature store is unchanged; a loaded speaker keeps its own)"})
    candidate_distance: bool = field(default=False, metadata={"help": "the follower's candidate angle channels also carry each candidate's distance (MatterSim's rel_distance, metres / 3), so a far candidate can be told from a near one in the same direction (default off: EnvDrop's channels carry no distance)"})
    candidate_lookahead: bool = field(default=False, metadata={"help": "each of the follower's candidates also carries the view one step ahead (the candidate viewpoint's feature in the view the agent faces on arriving), so a doorway can be told by the room beyond it (default off: EnvDrop's candidates carry the view from where the agent stands only)"})
    speaker_dropout: float = field(default=0.6, metadata={"help": "dropout of the speaker"})
    env_dropout: float = field(default=0.4, metadata={"help": "environmental dropout rate during back-translation"})
    speaker_feature_dropout: float = field(default=0.3, metadata={"help": "speaker feature dropout when training, element-wise on the visual channels of views and actions (EnvDrop's drop3 at featdropout 0.3)"})
    speaker_env_dropout: float = field(default=0.0, metadata={"help": "environmental dropout rate when training the speaker (0: off, as the original, which trains its speaker with feature dropout only)"})
    env_dropout_per: str = field(default="episode", metadata={"help": "environmental-dropout masks: one per episode of a batch, or one per batch (the original code's drop_env(ones(D)))", "choices": ("episode", "batch")})
    ema_decay: float = field(default=0.0, metadata={"help": "validate, save and export an exponential moving average of the follower's weights, updated after every optimiser step with this decay (torch.optim.swa_utils; e.g. 0.995; 0: off, as EnvDrop: the weights of the last step)"})
    grad_clip: float = field(default=40.0, metadata={"help": "gradient-norm clip"})
    max_instruction_length: int | None = field(default=None, metadata={"help": "tokens (default 80 R2R, 160 RxR)"})
    max_actions: int = field(default=35, metadata={"help": "actions per episode"})
    max_decode_length: int = field(default=120, metadata={"help": "speaker: max generated tokens"})
    vocab: str | None = field(default=None, metadata={"help": "vocabulary file, one word per line (default: built from the train split, words seen >= 5 times)"})
    stanza_dir: str | None = field(default=None, metadata={"help": "RxR: folder of local stanza models (<dir>/resources.json, <dir>/<lang>/tokenize/); default $STANZA_RESOURCES_DIR or stanza's cache; languages without a model use the regex split", **MAY_CHANGE})
    language: str | None = field(default=None, metadata={"help": "RxR language filter: en, hi-IN or te-IN (default: all)"})
    speaker: str | None = field(default=None, metadata={"help": "bt: speaker checkpoint (default: train one first for --speaker-iters)"})
    speaker_iters: int = field(default=2000, metadata={"help": "bt without --speaker: iterations of the speaker trained first"})
    follower: str | None = field(default=None, metadata={"help": "follower and bt: follower checkpoint to start from (EnvDrop --load; default: a new follower)"})
    load_optim: bool = field(default=False, metadata={"help": "also restore the RMSprop statistics of --follower (EnvDrop --loadOptim; the learning rate and weight decay stay --lr and --weight-decay)"})
    aug_data: str | None = field(default=None, metadata={"help": "follower: an R2R-format file of augmented paths with instructions (scripts/speak.py's output, or Speaker-Follower's augmentation data); optimiser steps alternate between a real batch (--ml-weight) and a batch of it (--aug-ml-weight), as EnvDrop's --aug (default: none, the training split alone)"})
    aug_paths: int = field(default=20000, metadata={"help": "bt: augmentation paths sampled on the training scans"})
    aug_min_edges: int = field(default=4, metadata={"help": "bt: fewest edges of an augmentation path's shortest path (EnvDrop 4)"})
    aug_max_edges: int = field(default=6, metadata={"help": "bt: most edges of an augmentation path's shortest path (EnvDrop 6; R2R's paths have 4-6, the synthetic world's 4-7)"})
    eval_every: int = field(default=1000, metadata={"help": "iterations between validations (each writes best_<split>.pt and latest.pt)"})
    latest_every: int = field(default=500, metadata={"help": "iterations between writes of latest.pt (0: only at validations)", **MAY_CHANGE})
    latest_minutes: float = field(default=5.0, metadata={"help": "minutes between writes of latest.pt, whichever comes first (0: off)", **MAY_CHANGE})
    eval_splits: str = field(default="val_seen,val_unseen", metadata={"help": "comma-separated validation splits (missing ones skipped)"})
    log_every: int = field(default=100, metadata={"help": "iterations between console/TensorBoard loss logs", **MAY_CHANGE})
    device: str = field(default="auto", metadata={"help": "cuda, cpu or auto", **MAY_CHANGE})
    seed: int = field(default=0, metadata={"help": "random seed"})
    out: str | None = field(default=None, metadata={"help": "run directory (default runs/<mode>__<features>__<seed>__<time>); an existing one resumes with the settings in its params.json", **MAY_CHANGE})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: 1 on the CPU, for the many small ops of a small model; at EnvDrop's hidden 512, 2 threads on 2 cores run IL + A2C 1.5x faster, its two batches side by side on one thread each; torch's on a GPU)", **MAY_CHANGE})
    allow_random_features: bool = field(default=False, metadata={"help": "accept features extracted with random weights (tests and benchmarks only)", **MAY_CHANGE})
    no_auto_data: bool = field(default=False, metadata={"help": "never generate the synthetic world / features; print the commands", **MAY_CHANGE})
    progress: bool = field(default=True, metadata={"help": "progress bar", **MAY_CHANGE})

    def to_dict(self) -> dict:
        return asdict(self)

    def check_given(self, given) -> None:
        """Raise :class:`InvalidSettingError` for a flag in ``given`` (fields typed on the command
        line) that this run's mode does not read (:data:`MODE_ONLY`, ``--aug-ml-weight``)."""
        for name in sorted(given):
            modes = MODE_ONLY.get(name)
            if modes and self.mode not in modes:
                raise InvalidSettingError(f"{flag_name(name)} is read by --mode {' and '.join(modes)} only, got --mode {self.mode}")
        if "aug_ml_weight" in given and self.mode != "bt" and not self.aug_data:
            raise InvalidSettingError(f"--aug-ml-weight weighs augmented batches: it needs --mode bt or --aug-data, "
                                      f"got --mode {self.mode}")

    def check(self) -> None:
        """Raise :class:`InvalidSettingError` naming the flag when a setting is out of its range."""
        if not self.weight_decay >= 0.0:
            raise InvalidSettingError(f"--weight-decay must be >= 0 (0: off), got {self.weight_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise InvalidSettingError(f"--label-smoothing must be in [0, 1) (0: off), got {self.label_smoothing}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise InvalidSettingError(f"--ema-decay must be in [0, 1) (0: off), got {self.ema_decay}")
        if not 1 <= self.angle_harmonics <= MAX_ANGLE_HARMONICS:
            raise InvalidSettingError(f"--angle-harmonics must be 1..{MAX_ANGLE_HARMONICS} (1: EnvDrop's encoding), "
                                      f"got {self.angle_harmonics}")
        if self.angle_harmonics > max_angle_harmonics(self.candidate_distance):
            raise InvalidSettingError(f"--candidate-distance needs one of the 128 angle channels: --angle-harmonics must "
                                      f"be 1..{max_angle_harmonics(True)} with it, got {self.angle_harmonics}")
        if self.aug_data and self.mode != "follower":
            raise InvalidSettingError(f"--aug-data trains the follower on a file of augmented paths: it needs --mode "
                                      f"follower, got --mode {self.mode} (back-translation writes its own)")
        if self.follower and self.mode == "speaker":
            raise InvalidSettingError("--follower starts a follower from a checkpoint: --mode speaker trains no follower")
        if self.speaker and self.mode != "bt":
            raise InvalidSettingError(f"--speaker is the speaker of back-translation (--mode bt), got --mode {self.mode}")
        if self.load_optim and not self.follower:
            raise InvalidSettingError("--load-optim restores the optimiser of --follower: give --follower")
        if not 1 <= self.aug_min_edges <= self.aug_max_edges:
            raise InvalidSettingError(f"--aug-min-edges and --aug-max-edges must satisfy 1 <= min <= max, got "
                                      f"{self.aug_min_edges} and {self.aug_max_edges}")
