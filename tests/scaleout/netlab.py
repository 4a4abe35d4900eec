"""Hosts on a network for the scale-out tests: Linux network namespaces joined by a bridge.

Each host is a namespace with its own loopback and one veth link to a bridge in the root
namespace (where the test itself runs, as the clients' host). The `db` host runs its own Redis
and a fresh PostgreSQL cluster, both listening only on its link address, so every byte between
API nodes, workers and the shared state crosses a (virtual) network: another host's address, a
link that can be cut (`partition`) and restored (`heal`). Needs root, iproute2 and PostgreSQL's
server binaries; `available()` says what is missing.
"""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


# PostgreSQL refuses to run as root; setpriv execs (no child process in between, so our
# signals reach the postmaster itself)
_AS_POSTGRES = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]


def _initdb() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else None


def available() -> str | None:
    """None when a lab can be built here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "redis-server", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if _initdb() is None:
        return "PostgreSQL's server binaries are not installed"
    return None


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


class NetLab:
    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)  # interface names stay under 15 characters
        self.subnet = f"10.213.{int(self.tag[:2], 16) % 250 + 1}"
        self.bridge = f"aigcbr{self.tag}"
        self.hosts: dict[str, str] = {}  # name -> address
        self.links: dict[str, str] = {}  # name -> its link's end on the bridge
        self.procs: list[subprocess.Popen] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="aigc-netlab-"))

    # ---- the network --------------------------------------------------------------------

    def start(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    def host(self, name: str) -> str:
        """A new host on the bridge; returns its address."""
        k = len(self.hosts) + 10
        ns, outside, inside = self.ns(name), f"ve{self.tag}{k}", f"vi{self.tag}{k}"
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", ns)
        _run("ip", "link", "set", outside, "master", self.bridge)
        _run("ip", "link", "set", outside, "up")
        addr = f"{self.subnet}.{k}"
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", inside)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        self.hosts[name], self.links[name] = addr, outside
        return addr

    def ns(self, name: str) -> str:
        return f"aigc-{self.tag}-{name}"

    def partition(self, name: str) -> None:
        """Cut the host off: its packets go nowhere (its connections hang, as on a real network)."""
        _run("ip", "link", "set", self.links[name], "down")

    def heal(self, name: str) -> None:
        _run("ip", "link", "set", self.links[name], "up")

    # ---- the shared state's host ------------------------------------------------------------

    def start_redis(self, host: str, port: int = 6379) -> str:
        addr = self.hosts[host]
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.ns(host), "redis-server", "--bind", addr, "--port", str(port),
             "--save", "", "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_port(addr, port)
        return f"redis://{addr}:{port}/0"

    def start_postgres(self, host: str, port: int = 5432) -> str:
        addr = self.hosts[host]
        data = self.tmp / "pg"
        data.mkdir()
        shutil.chown(self.tmp, "postgres")
        shutil.chown(data, "postgres")
        initdb = _initdb()
        assert initdb is not None
        subprocess.run([*_AS_POSTGRES, initdb, "-D", str(data), "-U", "postgres",
                        "--auth=trust", "--no-sync"], check=True, capture_output=True, timeout=120)
        with open(data / "pg_hba.conf", "a") as f:
            f.write(f"host all all {self.subnet}.0/24 trust\n")
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.ns(host), *_AS_POSTGRES, str(Path(initdb).with_name("postgres")),
             "-D", str(data), "-c", f"listen_addresses={addr}", "-c", f"port={port}",
             "-c", f"unix_socket_directories={data}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_port(addr, port)
        return f"postgresql://postgres@{addr}:{port}/postgres"

    # ---- teardown ---------------------------------------------------------------------------

    def stop(self) -> None:
        for p in self.procs:  # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for its clients)
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for name in self.hosts:  # a namespace's end of its veth goes with it, and so the pair
            subprocess.run(["ip", "netns", "del", self.ns(name)], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _wait_port(addr: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((addr, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
