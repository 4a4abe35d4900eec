"""The files a job's caller fetches: its artifacts, made again on demand once the in-memory
store let them go (after a restart, or past the TTL) and checked against the recorded sha256,
and the display copy a front posts (engine/display.py), recorded in the ledger first.

With ``AIGC_C2PA_SIGN`` the files are served with Content Credentials
(engine/provenance/credentials.py). A C2PA manifest is not byte-reproducible (random assertion
salts, manifest ids and ECDSA nonces), so the job's recorded, sha-checked artifact stays the
deterministic labelled file, and the signed copy is made when it is first served: kept in a store
of its own (same TTL and size cap) and recorded in the ledger under the same job and index before
it goes out, so ``/verify`` finds the signed bytes too. Display copies are made per request anyway
and are signed before they are recorded."""
from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

from engine.artifacts import ArtifactStore, StoredArtifact
from engine.config import EngineSettings
from engine.errors import EngineError
from engine.execution import Execution, provenance_meta
from engine.generator_process import GeneratorUnavailable
from engine.job_table import JobTable
from engine.protocol import DisplayRequest, JobStatus
from engine.provenance.credentials import SIGNABLE_MIMES

if TYPE_CHECKING:
    from engine.provenance import ProvenanceLedger
    from engine.provenance.credentials import Signer


class Files:
    def __init__(self, settings: EngineSettings, artifacts: ArtifactStore, table: JobTable,
                 execution: Execution, ledger: "ProvenanceLedger", signer: "Signer | None" = None) -> None:
        self.settings, self.artifacts, self.table = settings, artifacts, table
        self.execution, self.ledger = execution, ledger
        self._remaking = asyncio.Semaphore(1)  # artifacts made again on demand, one at a time
        self.signer = signer  # a credentials.Signer when files are served signed
        self._signed = ArtifactStore(settings.artifact_max_bytes, settings.artifact_ttl_s) if signer else None
        self._signing = asyncio.Lock()

    async def artifact(self, artifact_id: str) -> StoredArtifact:
        """What GET /v1/artifacts/{id} serves: the artifact, signed when signing is on and its
        format can carry a manifest."""
        art = await self.unsigned(artifact_id)
        if self.signer is None or self._signed is None or art.mime not in SIGNABLE_MIMES:
            return art
        async with self._signing:  # one signed copy per artifact while it is kept
            signed = self._signed.get(artifact_id)
            if signed is not None and signed.filename == art.filename:
                return signed
            job = await self.table.find(artifact_id.rpartition("-")[0])
            if job is None:
                raise EngineError(404, "not_found", "no such artifact (its job has expired)", "id")
            meta = provenance_meta(job, int(artifact_id.rpartition("-")[2]))
            r = job.request.requester
            signer, ledger = self.signer, self.ledger

            def make() -> bytes:  # worker thread: sign, then record before anyone gets it
                data = signer.sign(art.data, art.mime, meta)
                ledger.record_meta(data, meta, platform=r.platform, guild=r.guild, mime=art.mime)
                return data

            data = await asyncio.get_running_loop().run_in_executor(None, make)
            return self._signed.put(artifact_id, data, art.mime, art.filename)

    async def unsigned(self, artifact_id: str) -> StoredArtifact:
        """The job's recorded artifact: from the store, or made again and sha-checked."""
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
        async with self._remaking:
            art = self.artifacts.get(artifact_id)  # made by a request that held the semaphore
            if art is None:
                try:
                    data = await asyncio.get_running_loop().run_in_executor(None, self.execution.remake, job, index)
                except GeneratorUnavailable as e:
                    raise EngineError(503, "generator_unavailable", f"cannot make this file now: {e}",
                                      headers={"Retry-After": str(max(1, round(e.retry_after)))}) from None
                if hashlib.sha256(data).hexdigest() != view.sha256:
                    raise EngineError(410, "artifact_gone", "this file can no longer be made identically "
                                      "(the model or the encoder changed since); run the command again", "id")
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
        files = [(await self.unsigned(a.id)).data for a in shown]
        first, last = shown[0].index, shown[-1].index
        meta = {**provenance_meta(job, first), "index": "display",
                "rendition": f"display copy of output {first}" if first == last else
                             f"display copy of outputs {first}-{last}",
                "content_propagator": req.propagator, "propagate_id": req.propagate_id}
        r = job.request.requester

        def make() -> bytes:  # worker thread: compose, label, record before anyone gets it
            data = display_audio_png(files, meta, compress_level=self.settings.png_compress_level) if audio else \
                display_png(files, meta, cell=req.cell, compress_level=self.settings.png_compress_level)
            if self.signer is not None:
                data = self.signer.sign(data, "image/png", meta)
            self.ledger.record_meta(data, meta, platform=r.platform, guild=r.guild, mime="image/png")
            return data

        data = await asyncio.get_running_loop().run_in_executor(None, make)
        return StoredArtifact(f"{job.id}-display", data, "image/png", f"{job.spec.name}-{job.seed}-display.png",
                              hashlib.sha256(data).hexdigest())
