"""Scale-out: API nodes and `aigc worker`s on Redis Streams, shared state in PostgreSQL.

- ``database``  the PostgreSQL pool and schema (jobs, outputs, files, the ledger)
- ``journal``   the job journal in PostgreSQL (the SQLite Journal's API), so any node answers any job
- ``ledger``    the provenance ledger in PostgreSQL (the SQLite ledger's API), append-only
- ``streams``   Redis keys, the admission script (bounded streams) and events
- ``ingress``   the API node's side: admit into a stream, apply workers' results to jobs
- ``worker``    the worker's side: read batches, run, commit once per (job, index), acknowledge

Nothing here is imported unless ``AIGC_QUEUE_URL`` is set (or ``aigc worker`` runs).
"""
