"""Gymnasium environments for vision-and-language navigation.

Registers ``vln/R2R-v0`` and ``vln/RxR-v0`` (single environments, with ``TimeLimit`` at 35
actions) whose ``vector_entry_point`` is the natively batched environment::

    import gymnasium as gym, envs
    env = gym.make("vln/R2R-v0", split="val_unseen", features="synthetic_semantic")
    vec = gym.make_vec("vln/R2R-v0", num_envs=64, vectorization_mode="vector_entry_point")

Importing this package is light (lazy entry points; no torch).
"""
from gymnasium.envs.registration import register, registry

_ENVS = {
    "vln/R2R-v0": ("envs.single:R2REnv", "envs.vector:R2RVectorEnv"),
    "vln/RxR-v0": ("envs.single:RxREnv", "envs.vector:RxRVectorEnv"),
}
for _id, (_single, _vector) in _ENVS.items():
    if _id not in registry:
        register(id=_id, entry_point=_single, vector_entry_point=_vector, max_episode_steps=35,
                 disable_env_checker=False)
