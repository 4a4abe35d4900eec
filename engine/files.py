"""The files a job's caller fetches: its artifacts, made again on demand once the in-memory
store let them go (after a restart, or past the TTL), and the display copy a front posts
(engine/display.py), recorded in the ledger first.

Every file is signed with Content Credentials where its format allows (unless AIGC_C2PA_SIGN is
off): outputs when they are finished (engine/execution.py), display copies when they are made. The
contract for the hashes: a C2PA manifest is not byte-reproducible (random assertion salts,
manifest ids and ECDSA nonces), so an output's identity is its deterministic *labelled* file
(``labelled_sha256`` in the job's view). A file made again is checked against that hash, then
signed afresh: new bytes, recorded in the ledger under the same job and index before they go out,
and named by the ETag. ``/verify`` finds the labelled file and every signed copy.
"""
from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Awaitable, Callable

from engine.artifacts import ArtifactStore, StoredArtifact
from engine.config import EngineSettings
from engine.errors import EngineError
from engine.execution import Execution, provenance_meta
from engine.generator_process import GeneratorUnavailable
from engine.job_table import JobTable
from engine.protocol import DisplayRequest, JobStatus

if TYPE_CHECKING:
    from engine.provenance import ProvenanceLedger
    from engine.provenance.credentials import Signer


class Files:
    def __init__(self, settings: EngineSettings, artifacts: ArtifactStore, table: JobTable,
                 execution: Execution, ledger: "ProvenanceLedger",
                 stored: Callable[[str], Awaitable[StoredArtifact | None]] | None = None) -> None:
        self.settings, self.artifacts, self.table = settings, artifacts, table
        self.stored = stored  # scaled out: the files workers recorded (engine/scaleout), before remaking
        self.execution, self.ledger = execution, ledger
        self._remaking = asyncio.Semaphore(1)  # artifacts made again on demand, one at a time

    @property
    def signer(self) -> "Signer | None":
        return self.execution.signer

    async def artifact(self, artifact_id: str) -> StoredArtifact:
        """What GET /v1/artifacts/{id} serves: from the store, or made again, sha-checked
        against the labelled file's hash, signed afresh and recorded before it goes out."""
        art = self.artifacts.get(artifact_id)
        if art is not None:
            return art
        gone = EngineError(404, "not_found", "no such artifact (its job has expired)", "id")
        job_id, _, tail = artifact_id.rpartition("-")  # artifact ids are "<job>-<index>"
        if not job_id or not (tail.isascii() and tail.isdigit()) or len(tail) > 6:
            raise gone
        job = await self.table.find(job_id)
        index = int(tail)
        view = job.outputs[index] if job and job.status is JobStatus.done and index < job.count else None
        if job is None or view is None:
            raise gone
        if self.stored is not None:
            art = await self.stored(artifact_id)
            if art is not None and art.sha256 == view.sha256:
                return self.artifacts.put(artifact_id, art.data, art.mime, art.filename)
        async with self._remaking:
            art = self.artifacts.get(artifact_id)  # made by a request that held the semaphore
            if art is None:
                execution, ledger = self.execution, self.ledger

                def make() -> bytes:  # worker thread: make, check, sign, record
                    data = execution.remake(job, index)
                    if hashlib.sha256(data).hexdigest() != (view.labelled_sha256 or view.sha256):
                        raise EngineError(410, "artifact_gone", "this file can no longer be made identically "
                                          "(the model or the encoder changed since); run the command again", "id")
                    records: list = []
                    served = execution.sign_output(job, index, data, view.mime, provenance_meta(job, index), records)
                    ledger.record_meta_many(records)
                    return served

                try:
                    data = await asyncio.get_running_loop().run_in_executor(None, make)
                except GeneratorUnavailable as e:
                    raise EngineError(503, "generator_unavailable", f"cannot make this file now: {e}",
                                      headers={"Retry-After": str(max(1, round(e.retry_after)))}) from None
                art = self.artifacts.put(artifact_id, data, view.mime, view.filename)
        return art

    async def display(self, job_id: str, req: DisplayRequest) -> StoredArtifact:
        """The picture a front posts for a finished image job: its outputs in one labelled PNG
        naming who posts it, recorded in the ledger as a display copy. For an audio job: its
        outputs' spectrograms and waveforms (engine/display_audio.py)."""
        from engine.display import display_png
        from engine.display_audio import display_audio_png

        job = await self.table.find(job_id)
        if job is None:
            raise EngineError(404, "not_found", f"no job {job_id[:64]!r}", "id")
        if job.status is not JobStatus.done:
            raise EngineError(409, "not_done", f"job {job.id} is {job.status.value}; only a finished job "
                              "has a display copy", "id")
        shown = [a for a in job.outputs if a is not None and a.mime == "image/png"]
        audio = not shown
        if audio:
            shown = [a for a in job.outputs if a is not None and a.mime.startswith("audio/")]
        if not shown:
            raise EngineError(409, "not_an_image", f"job {job.id} made no PNG images or audio to display", "id")
        files = [(await self.artifact(a.id)).data for a in shown]
        first, last = shown[0].index, shown[-1].index
        meta = {**provenance_meta(job, first), "index": "display",
                "rendition": f"display copy of output {first}" if first == last else
                             f"display copy of outputs {first}-{last}",
                "content_propagator": req.propagator, "propagate_id": req.propagate_id}
        r = job.request.requester

        signer, ledger = self.signer, self.ledger

        def make() -> bytes:  # worker thread: compose, label, sign, record before anyone gets it
            data = display_audio_png(files, meta, compress_level=self.settings.png_compress_level) if audio else \
                display_png(files, meta, cell=req.cell, compress_level=self.settings.png_compress_level)
            if signer is not None:  # the outputs shown are its ingredients: one scaled, or several placed
                from engine.provenance.credentials import SIGNABLE_MIMES, Ingredient

                relationship = "parentOf" if len(shown) == 1 else "componentOf"
                # a file C2PA cannot read (Ogg) is named by title only
                data = signer.sign(data, "image/png", meta, [
                    Ingredient(title=f"output {a.index} of job {job.id}", relationship=relationship,
                               mime=a.mime, data=f if a.mime in SIGNABLE_MIMES else None)
                    for a, f in zip(shown, files)])
            ledger.record_meta(data, meta, platform=r.platform, guild=r.guild, mime="image/png",
                               signed=signer is not None)
            return data

        data = await asyncio.get_running_loop().run_in_executor(None, make)
        return StoredArtifact(f"{job.id}-display", data, "image/png", f"{job.spec.name}-{job.seed}-display.png",
                              hashlib.sha256(data).hexdigest())
