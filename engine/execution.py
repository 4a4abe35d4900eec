"""Execution: a batch's forward pass and its finishing (output checks, encoding, signing with
Content Credentials, storing, and committing the ledger rows and the journal's note before anyone
sees a result).

Signing happens here, on the finishing thread (c2pa's native code runs without the GIL while the
next batch's forward pass runs in the generator's process), on top of the deterministic labelled
bytes: both are recorded in the ledger, the view's ``labelled_sha256`` names the labelled file (the
one made again on demand and sha-checked) and ``sha256`` the signed file that is served. A
follow-up names the output it started from as a C2PA ingredient (``inputTo``), with that file's own
manifest when it is still in the artifact store.

The scheduler runs ``generate`` and ``finish`` on its lane threads. A generator process that is
down or dies under a batch turns into ``Requeue`` items (the jobs wait; an output that kills its
process every time, running alone, fails by itself); any other failure of a batch runs its items
one by one so that one bad item fails alone.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from engine.artifacts import ArtifactStore
from engine.config import EngineSettings
from engine.generator_process import GeneratorDied, GeneratorProcess, GeneratorUnavailable
from engine.jobs import Job
from engine.journal import Journal
from engine.provenance.ledger import sha256_hex
from engine.prompt_gate import PromptGate
from engine.protocol import ArtifactView, ErrorInfo
from engine.registry import Registry
from engine.scheduler import Requeue
from engine.sdk import EncodeContext, Generator, Output

if TYPE_CHECKING:
    from engine.policy import OutputChecks
    from engine.provenance.credentials import Ingredient, Signer
    from engine.provenance import ProvenanceLedger
    from engine.provenance.ledger import LedgerRecord

log = logging.getLogger("aigc.engine")
STUCK_CHILD_S = 60.0  # a generator process silent this long on a batch is killed
MAX_CRASHES_PER_OUTPUT = 3  # an output whose generator process died under it this often fails


@dataclass
class Generated:
    """One output of the forward stage, with its file bytes when the generator's process
    encoded it already."""

    output: Output
    data: bytes | None = None
    ctx: EncodeContext | None = None  # what the child encoded with


class OutputRefused(Exception):
    """An output that an output check refused (its job fails; nothing is published)."""

    def __init__(self, rule: str | None, category: str | None):
        super().__init__(f"an output was refused by content rule {rule} ({category})")
        self.rule, self.category = rule, category


def error_info(exc: BaseException) -> ErrorInfo:
    """What a job that failed on ``exc`` reports."""
    if isinstance(exc, OutputRefused):
        return ErrorInfo(code="output_refused", message=str(exc), rule=exc.rule, category=exc.category)
    return ErrorInfo(code="generation_failed", message=f"{type(exc).__name__}: {exc}"[:300])


class Execution:
    def __init__(self, settings: EngineSettings, registry: Registry, artifacts: ArtifactStore,
                 ledger: "ProvenanceLedger", journal: Journal, gate: PromptGate,
                 output_checks: "OutputChecks | None", signer: "Signer | None" = None) -> None:
        self.settings, self.registry, self.artifacts = settings, registry, artifacts
        self.ledger, self.journal, self.gate, self.output_checks = ledger, journal, gate, output_checks
        self.signer = signer  # None: AIGC_C2PA_SIGN=false, files are served as labelled

    # ---- the first stage: the forward pass --------------------------------------------

    def generate(self, g: Generator, batch: list[tuple[Job, int]], busy: bool = False) -> list[Any]:
        """One output (or exception, or Requeue) per item."""
        try:
            return self.forward(g, batch, busy)
        except GeneratorUnavailable as e:  # nothing ran: wait for the back-off, keep the jobs
            log.warning("generator unavailable; batch kept queued", extra={"generator": g.name, "error": str(e)})
            return [Requeue(str(e), e.retry_after)] * len(batch)
        except GeneratorDied as e:
            return self._after_crash(g, batch, e)
        except Exception as e:
            if len(batch) == 1:
                log.exception("generation failed", extra={"generator": g.name, "job": batch[0][0].id})
                return [e]
            out: list[Any] = []
            for one in batch:
                try:
                    out.extend(self.forward(g, [one], busy))
                except Exception as e1:
                    log.exception("generation failed", extra={"generator": g.name, "job": one[0].id})
                    out.append(e1)
            return out

    def _after_crash(self, g: Generator, batch: list[tuple[Job, int]], e: GeneratorDied) -> list[Any]:
        """The generator process died under this batch. Its items run again, each alone, so
        that an output which kills the process every time fails by itself (after
        MAX_CRASHES_PER_OUTPUT tries alone) while its neighbours finish."""
        log.warning("generator process died under a batch; its items run again",
                    extra={"generator": g.name, "items": len(batch), "error": str(e)})
        if len(batch) > 1:
            return [Requeue(str(e), solo=True)] * len(batch)
        job, index = batch[0]
        job.crashes[index] = tries = job.crashes.get(index, 0) + 1
        if tries >= MAX_CRASHES_PER_OUTPUT:
            return [GeneratorDied(f"the generator process died {tries} times while making this output")]
        return [Requeue(str(e), solo=True)]

    def forward(self, g: Generator, batch: list[tuple[Job, int]], busy: bool = False) -> list[Generated]:
        import torch

        items = [job.item(i) for job, i in batch]
        if isinstance(g, GeneratorProcess):  # the child encodes too, outside this process's GIL
            ctxs = [self.encode_context(job, i) for job, i in batch]
            # a guard against a stuck child, not the jobs' deadline: never under STUCK_CHILD_S
            timeout = max(STUCK_CHILD_S, max(job.deadline for job, _ in batch) - time.monotonic())
            made = g.generate_encoded(items, [(job.spec.modality, c) for (job, _), c in zip(batch, ctxs)],
                                      busy, timeout)
            outputs = [Generated(o, data, c) for (o, data), c in zip(made, ctxs)]
        else:
            with torch.inference_mode():
                outputs = [Generated(o) for o in g.generate(items)]
        if len(outputs) != len(items):
            raise RuntimeError(f"generator {g.name} returned {len(outputs)} outputs for {len(items)} items")
        return outputs

    # ---- the second stage: finishing --------------------------------------------------

    def finish(self, g: Generator, batch: list[tuple[Job, int]], outputs: list[Any],
               record: bool = True) -> list[Any]:
        """Output checks, encoding (unless the generator process did) and storing; then, with
        ``record``, the commit that makes the batch durable."""
        results, records = self.finish_uncommitted(g, batch, outputs)
        return self._commit(batch, results, records) if record else results

    def finish_uncommitted(self, g: Generator, batch: list[tuple[Job, int]],
                           outputs: list[Any]) -> tuple[list[Any], list[LedgerRecord]]:
        """``finish`` without the commit: the results and the ledger records they need (a
        scaled-out worker commits them to PostgreSQL itself, engine/scaleout/worker.py)."""
        results: list[Any] = []
        records: list[LedgerRecord] = []
        for (job, i), made in zip(batch, outputs):
            if isinstance(made, BaseException) or job.status.terminal:  # failed, or cancelled meanwhile
                results.append(made)
                continue
            try:
                results.append(self._check_output(job, made.output) or self._store(job, i, made, records))
            except Exception as e:
                log.exception("finishing an output failed", extra={"generator": g.name, "job": job.id})
                results.append(e)
        return results, records

    def run_unrecorded(self, g: Generator, batch: list[tuple[Job, int]]) -> list[Any]:
        """Both stages at once, for the warm-up: nothing is served, so nothing is recorded."""
        return self.finish(g, batch, self.forward(g, batch), record=False)

    def _commit(self, batch: list[tuple[Job, int]], results: list[Any], records: list[LedgerRecord]) -> list[Any]:
        """Make a finished batch durable before anyone sees it (finishing thread): the
        provenance ledger's rows first (an output is not done until its file is recorded; one
        transaction per batch), then the journal's note of each output, so that a crash after
        this point neither loses the record nor runs the output again."""
        try:
            if records:
                self.ledger.record_meta_many(records)
        except Exception as e:
            log.exception("provenance ledger write failed", extra={"jobs": sorted({m.get("job") for _, m, _ in records})})
            failed = RuntimeError(f"the provenance ledger could not record this output, so it was not published: {e}"[:300])
            for r in results:
                if isinstance(r, ArtifactView):
                    self.artifacts.discard(r.id)
            return [failed if isinstance(r, ArtifactView) else r for r in results]
        done: dict[Job, dict[int, dict[str, Any]]] = {}
        for (job, i), r in zip(batch, results):
            if isinstance(r, ArtifactView):
                done.setdefault(job, {})[i] = r.model_dump(mode="json")
        for job, outputs in done.items():
            try:
                self.journal.record_outputs(job.id, outputs)
            except Exception:  # the result stands; only a crash now would make it again, identically
                log.exception("journal write failed", extra={"job": job.id})
        return results

    def _check_output(self, job: Job, out: Output) -> OutputRefused | None:
        """Text outputs meet the same rules as prompts; other modalities the output checks."""
        ctx = job.request.policy
        if out.text is not None:
            verdict = self.gate.moderate_now(out.text, ctx.rules if ctx else None, ctx.automod if ctx else None)
            if not verdict.allowed:
                return OutputRefused(verdict.rule, verdict.category)
        if self.output_checks is not None:
            v = self.output_checks.run(job.spec.modality, out.data)
            if not v.allowed:
                return OutputRefused(v.rule or v.check, v.category)
        return None

    def encode_context(self, job: Job, index: int) -> EncodeContext:
        return EncodeContext(meta=provenance_meta(job, index), visible_mark=job.visible_mark,
                             compress_level=self.settings.png_compress_level)

    def _store(self, job: Job, index: int, made: Generated, records: list[LedgerRecord]) -> ArtifactView:
        """Keep the artifact; its ledger record is appended to ``records``."""
        modality = self.registry.modalities[job.spec.modality]
        ctx = made.ctx or self.encode_context(job, index)
        meta, out = ctx.meta, made.output
        data = made.data if made.data is not None else modality.encode(out, ctx)
        mime, extension = modality.file_type(job.options)  # a format option may choose another type
        served = self.sign_output(job, index, data, mime, meta, records)
        art_id = f"{job.id}-{index}"
        filename = f"{job.spec.name}-{job.seed}-{index}.{extension}"
        stored = self.artifacts.put(art_id, served, mime, filename)
        return ArtifactView(id=art_id, index=index, url=f"/v1/artifacts/{art_id}", mime=mime,
                            filename=filename, size=len(served), sha256=stored.sha256,
                            labelled_sha256=stored.sha256 if served is data else sha256_hex(data),
                            presentation=modality.presentation, text=out.text,
                            meta={k: v for k, v in out.meta.items() if isinstance(v, (str, int, float, bool))})

    def sign_output(self, job: Job, index: int, data: bytes, mime: str, meta: dict[str, str],
                    records: "list[LedgerRecord]") -> bytes:
        """The file to serve for these labelled bytes: signed with Content Credentials where the
        format allows and signing is on. The ledger rows of both files go to ``records``."""
        from engine.provenance.credentials import signable

        r = job.request.requester
        where = {"platform": r.platform, "guild": r.guild, "mime": mime}
        if self.signer is None or signable(mime) is None:
            records.append((data, meta, where))
            return data
        from engine.provenance.content_hash import content_sha256

        p = job.request.parent
        description = f"{p.action} of output {p.index} of job {p.job}" if p is not None else None
        signed = self.signer.sign(data, mime, meta, self.parent_ingredients(job), description=description)
        content = content_sha256(data)  # once: signing changes no pixel or sample
        records.append((data, meta, {**where, "content_sha256": content}))
        records.append((signed, meta, {**where, "content_sha256": content, "signed": True}))
        return signed

    def parent_ingredients(self, job: Job) -> "list[Ingredient]":
        """The outputs this one was made from, inputs to the model: a follow-up's source (the
        output the front named, ``parent.index``), then the job's other ``sources`` (a Blend's
        two ends), each once. Carried with its own manifest while the engine still holds the
        file, else named by title only (it expired, or the engine restarted)."""
        from engine.provenance.credentials import Ingredient

        p = job.request.parent
        refs = ([(p.job, p.index)] if p is not None else []) + [(s.job, s.index) for s in job.request.sources]
        out = []
        for ref_job, index in dict.fromkeys(refs):
            held = self.artifacts.get(f"{ref_job}-{index}")
            out.append(Ingredient(title=f"output {index} of job {ref_job}", relationship="inputTo",
                                  mime=held.mime if held else "image/png", data=held.data if held else None))
        return out

    def remake(self, job: Job, index: int) -> bytes:
        """Output ``index`` of a finished job, encoded again: the labelled, unsigned bytes
        (worker thread)."""
        made = self.forward(self.registry.generators[job.spec.generator], [(job, index)])[0]
        if made.data is not None:
            return made.data
        return self.registry.modalities[job.spec.modality].encode(made.output, self.encode_context(job, index))


def provenance_meta(job: Job, index: int) -> dict[str, str]:
    """What every artifact carries inside the file (and the ledger records); a follow-up's
    own options (morph's target) too, so the file says what it is."""
    extra = {"action_options": json.dumps(job.action_options, sort_keys=True, ensure_ascii=False)} \
        if job.action_options else {}
    return {
        "label": "AI-generated",
        "producer": "AIGC Bot",
        "job": job.id,
        "index": str(index),
        "command": job.spec.name,
        "plugin": job.spec.plugin,
        "options": json.dumps(job.options, sort_keys=True, ensure_ascii=False),
        "seed": str(job.seed),
        "action": job.action,
        "model": job.model.get("name", ""),
        "model_version": job.model.get("version", ""),
        "model_sha256": job.model.get("sha256", ""),
        "created": datetime.fromtimestamp(job.created, timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
