"""The run both trainers share: steps until the schedule (or the time box) ends, with a
progress bar (losses, img/s, epoch), periodic samples and checkpoints, and a final report."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any, Callable

from tqdm import tqdm


def end_step(stop_at: int | None, total_steps: int) -> int:
    """The step a run stops at: the schedule's end, or --stop-at, which ends the run early
    without changing the schedule (the learning-rate decay still counts to total_steps), so a
    checkpoint from the middle of a schedule can be reproduced by one command."""
    if stop_at is None:
        return total_steps
    if not 1 <= stop_at <= total_steps:
        raise ValueError(f"--stop-at: must be between 1 and the schedule's {total_steps} steps "
                         f"(--epochs × steps per epoch), got {stop_at}")
    return stop_at


def run_training(trainer: Any, kind: str, postfix: Callable[[dict[str, float]], dict[str, str]]) -> dict[str, Any]:
    """``trainer`` has cfg, out, device, step, total_steps, end_step, steps_per_epoch, history,
    train_step(step), save() and save_samples(); ``postfix`` formats its losses for the bar."""
    cfg = trainer.cfg
    trainer.out.mkdir(parents=True, exist_ok=True)
    start_step, t0 = trainer.step, time.perf_counter()
    deadline = t0 + cfg.minutes * 60 if cfg.minutes else None
    bar = tqdm(total=trainer.total_steps, initial=trainer.step, disable=not cfg.progress,
               desc=f"{kind} {cfg.size}px", unit="step", dynamic_ncols=True)
    last: dict[str, float] = {}
    while trainer.step < trainer.end_step:
        last = trainer.train_step(trainer.step)
        trainer.step += 1
        ips = (trainer.step - start_step) * cfg.batch / (time.perf_counter() - t0)
        bar.update(1)
        bar.set_postfix(**postfix(last), img_s=f"{ips:.0f}", epoch=trainer.step // trainer.steps_per_epoch)
        if trainer.step % 50 == 0:
            trainer.history.append({"step": trainer.step, **last, "img_s": ips})
        if trainer.step % cfg.sample_every == 0:
            trainer.save_samples()
        if trainer.step % cfg.checkpoint_every == 0:
            trainer.save()
        if deadline and time.perf_counter() > deadline:
            break
    bar.close()
    wall = time.perf_counter() - t0
    trainer.save()
    trainer.save_samples()
    report = {"kind": kind, "steps": trainer.step, "steps_this_run": trainer.step - start_step,
              "images_seen": trainer.step * cfg.batch, "wall_s": round(wall, 1),
              "img_s": round((trainer.step - start_step) * cfg.batch / max(wall, 1e-9), 1),
              "device": str(trainer.device), "final": last, "config": asdict(cfg),
              **({"init": trainer.init_notes} if getattr(trainer, "init_notes", None) else {})}
    (trainer.out / "report.json").write_text(json.dumps(report, indent=1))
    return report
