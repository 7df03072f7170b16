"""The run layer every trainer uses (navigation, VQA, captioning, pre-training).

It knows nothing of any task: a trainer brings its settings dataclass, its model and its step.

Modules::

    training.config      settings dataclass -> command line (parse_config), params.json
                         (write_params / read_params), the resume check (resume_config)
    training.checkpoint  atomic weights-only checkpoints (save_checkpoint / load_checkpoint)
                         with the random states (rng_state / restore_rng_state); unreadable files
                         are one line naming the file and the problem
    training.run         RunDir: the run folder (params.json, latest.pt, best_<name>.pt, tb/),
                         fresh or resumed; LatestPolicy: latest.pt every N iterations or M minutes
    training.logging     TrainLog: TensorBoard under fixed tags, hparams once, a progress bar with it/s
                         (and items/s: pairs, samples)
    training.sampler     ResumableDistributedSampler: DistributedSampler's order, resumable mid-epoch
    training.distributed init_distributed (torchrun's environment -> process group, device), all-reduce
                         and gather helpers that are no-ops in one process; RunDir(writer=rank == 0)

A trainer, top to bottom (see ``tests/toy_trainer.py`` for a complete one)::

    cfg, given = parse_config(MyConfig, argv, "Train my model.")
    run = RunDir(cfg.out or Path("runs") / run_name("mytask", cfg.seed), fmt="clipvil-mytask-v1")
    cfg = run.resolve_config(cfg, given)           # saved settings when resuming; differing flags refused
    model, opt = build(cfg); it = 0
    if run.resuming:
        tensors, meta = run.load_latest()
        model.load_state_dict(tensors["model"]); opt.load_state_dict(tensors["optimizer"])
        restore_rng_state(tensors["rng"]); it = meta["iteration"]
    run.check_iterations(it, cfg.iters)
    run.write_params(cfg)
    policy = LatestPolicy(cfg.latest_every, cfg.latest_minutes)
    with TrainLog(run.tb_dir, cfg.iters, it, cfg.log_every, cfg.progress) as log:
        if it == 0:
            log.hparams(asdict(cfg))
        while it < cfg.iters:
            losses = step(model, opt); it += 1
            log.step(it, losses)
            if policy.due(it):
                run.save_latest({"model": ..., "optimizer": ..., "rng": rng_state()}, {"iteration": it})
                policy.saved(it)

Importing the package imports nothing heavy; the modules import torch (and tensorboard when a
TrainLog is opened). It never imports ``agents``, ``envs`` or the navigation parts of ``vln``.
"""
