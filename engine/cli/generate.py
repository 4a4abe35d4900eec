"""`aigc generate COMMAND --option value ... -o DIR`: run the engine in-process, write files."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import settings_or_exit


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("command", help="the command to run, e.g. emoji")
    p.add_argument("-o", "--out", default="out", help="folder for the files (default ./out)")
    p.add_argument("--action", help="a follow-up action (variations, morph, ...) of --parent-seed")
    p.add_argument("--index", type=int, default=0, help="which output the action starts from")
    p.add_argument("--parent-seed", type=int, help="seed of the output the action starts from")
    p.add_argument("--json", action="store_true", help="print the job as JSON")
    p.epilog = "Any other --name value pair is passed as the command's option `name`."


def _parse_options(extra: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    it = iter(extra)
    for tok in it:
        if not tok.startswith("--"):
            raise SystemExit(f"aigc generate: expected --option value, got {tok!r}")
        name, eq, value = tok[2:].partition("=")
        if not eq:
            value = next(it, None)
            if value is None:
                raise SystemExit(f"aigc generate: --{name} needs a value")
        opts[name.replace("-", "_")] = value
    return opts


def _typed(spec_options, raw: dict[str, str]) -> dict[str, Any]:
    types = {o.name: o.type.value for o in spec_options}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        t = types.get(name)
        try:
            if t == "integer":
                out[name] = int(value)
            elif t == "number":
                out[name] = float(value)
            elif t == "boolean":
                out[name] = value.lower() in ("1", "true", "yes", "on")
            else:
                out[name] = value
        except ValueError:
            raise SystemExit(f"aigc generate: --{name} must be a {t}, got {value!r}") from None
    return out


async def _generate(args: argparse.Namespace, raw: dict[str, str]) -> int:
    from engine.protocol import JobRequest, ParentRef, Requester
    from engine.errors import EngineError
    from engine.service import Engine

    engine = Engine(settings_or_exit(warmup=False, generator_processes=False))
    await engine.start()
    try:
        spec = engine.registry.command(args.command) if engine.registry else None
        if spec is None:
            names = ", ".join(sorted(engine.registry.commands)) if engine.registry else ""
            print(f"aigc generate: unknown command {args.command!r} (known: {names})", file=sys.stderr)
            return 2
        options = _typed(spec.options, raw)
        if args.action and args.action != "generate":
            if args.parent_seed is None:
                print("aigc generate: --action needs --parent-seed", file=sys.stderr)
                return 2
            base = {k: v for k, v in options.items() if k not in {"to"}}
            act_opts = {k: v for k, v in options.items() if k == "to"}
            parent = ParentRef(job="cli", action=args.action, index=args.index, command=spec.name,
                               options=base, seed=args.parent_seed)
            req = JobRequest(command=spec.name, options=act_opts, parent=parent,
                             requester=Requester(platform="cli", user="cli"))
        else:
            req = JobRequest(command=spec.name, options=options, requester=Requester(platform="cli", user="cli"))
        try:
            job = await engine.submit(req)
        except EngineError as e:
            print(f"aigc generate: {e.message}", file=sys.stderr)
            return 2
        job = await engine.wait(job.id, timeout=engine.settings.job_deadline_s)
        view = job.view()
        if view.error:
            print(f"aigc generate: {view.error.message}", file=sys.stderr)
            return 1
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for art in view.artifacts:
            stored = engine.artifacts.get(art.id)
            assert stored is not None
            (out / art.filename).write_bytes(stored.data)
            if not args.json:
                print(out / art.filename)
        if args.json:
            print(json.dumps(view.model_dump(mode="json"), ensure_ascii=False))
        return 0
    finally:
        await engine.stop()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_generate(args, _parse_options(getattr(args, "extra", []))))
