"""A scaled-out deployment on loopback for the tests: API nodes (`aigc engine --queue`) and
workers (`aigc worker`) as separate processes, a throwaway PostgreSQL database and a random
Redis key prefix (the shared Redis keeps other runs' keys; ours are removed at the end)."""
from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cluster-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PG_ADMIN = os.environ.get("AIGC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AIGC_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    kind: str  # "engine" or "worker"
    name: str
    port: int
    proc: subprocess.Popen
    log: Path
    host: str = "127.0.0.1"  # its address (another host's, when it runs in a network namespace)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""


@dataclass
class Cluster:
    database_url: str
    redis_url: str
    prefix: str
    tmp: Path
    nodes: list[Node] = field(default_factory=list)
    env_extra: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT), "AIGC_QUEUE_URL": self.redis_url,
                "AIGC_DATABASE_URL": self.database_url, "AIGC_QUEUE_PREFIX": self.prefix,
                "AIGC_ENGINE_TOKEN": TOKEN, "AIGC_PLUGINS_ENABLED": "emoji", "AIGC_GENERATOR_PROCESSES": "false",
                "AIGC_WARMUP": "false", "AIGC_THREADS": "1", "AIGC_LOG_FORMAT": "text",
                "AIGC_CLAIM_IDLE_MS": "1500", "AIGC_DATA_DIR": str(self.tmp / "data"), **self.env_extra, **extra}

    def _spawn(self, kind: str, name: str, args: list[str], env: dict[str, str], netns: str | None,
               host: str | None) -> Node:
        port = free_port()
        log = self.tmp / f"{name}.log"
        args = [*args, "--port", str(port), *(["--host", host] if host else [])]
        # in a network namespace: `ip netns exec` execs the command, so the pid is the node's own
        where = ["ip", "netns", "exec", netns] if netns else []
        with open(log, "ab") as out:
            proc = subprocess.Popen([*where, sys.executable, "-m", "aigc.cli", kind, *args], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        node = Node(kind, name, port, proc, log, host or "127.0.0.1")
        self.nodes.append(node)
        return node

    def api(self, name: str, *, netns: str | None = None, host: str | None = None, **env: str) -> Node:
        return self._spawn("engine", name, [], self.env(**env), netns, host)

    def worker(self, name: str, *, netns: str | None = None, host: str | None = None, **env: str) -> Node:
        return self._spawn("worker", name, ["--name", name], self.env(**env), netns, host)

    async def ready(self, *nodes: Node, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            for node in nodes:
                while True:
                    if node.proc.poll() is not None:
                        raise AssertionError(f"{node.name} exited ({node.proc.returncode}):\n{node.tail()}")
                    try:
                        async with http.get(f"{node.url}/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{node.name} not ready in {timeout} s:\n{node.tail()}")
                    await asyncio.sleep(0.2)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            try:
                node.proc.wait(15)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()


async def make_database() -> str:
    name = f"aigc_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def drop_keys(redis_url: str, prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def submit(http: aiohttp.ClientSession, node: Node, body: dict[str, Any], expect: int = 202) -> dict:
    async with http.post(f"{node.url}/v1/jobs", json=body, headers=AUTH) as r:
        data = await r.json()
        assert r.status == expect, (r.status, data)
        if expect == 429 or expect == 503:
            assert int(r.headers["Retry-After"]) >= 1
        return data


async def get_job(http: aiohttp.ClientSession, node: Node, job_id: str) -> dict:
    async with http.get(f"{node.url}/v1/jobs/{job_id}", headers=AUTH) as r:
        data = await r.json()
        assert r.status == 200, data
        return data


async def events(http: aiohttp.ClientSession, node: Node, job_id: str) -> list[tuple[str, dict]]:
    """Every server-sent event of a job until it is finished."""
    import json

    out: list[tuple[str, dict]] = []
    async with http.get(f"{node.url}/v1/jobs/{job_id}/events", headers=AUTH,
                        timeout=aiohttp.ClientTimeout(total=120)) as r:
        assert r.status == 200
        event = ""
        async for line in r.content:
            if line.startswith(b"event: "):
                event = line[7:].decode().strip()
            elif line.startswith(b"data: "):
                out.append((event, json.loads(line[6:])))
    return out
