"""Requests the HTTP parser cannot read, sent to a real `aigc engine` process: a 400 with a JSON
error body, and one log line that names the error but not the bytes (a malformed line can carry
the bearer token)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "secret-token-for-the-log-test-0123456789"

PAYLOADS = [
    # a control character in the Authorization header
    f"GET /v1/catalog HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\x01\r\n\r\n".encode(),
    # an Authorization line over aiohttp's 8 KiB limit
    f"GET /v1/catalog HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}{'a' * 9000}\r\n\r\n".encode(),
    # not HTTP at all, quoting the token
    f"{TOKEN} {TOKEN}\r\n\r\n".encode(),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_malformed_request_is_refused_and_logged_without_its_bytes(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIGC_ENGINE_TOKEN": TOKEN, "AIGC_PLUGINS_ENABLED": "none",
           "AIGC_WARMUP": "false", "AIGC_LOG_FORMAT": "json", "AIGC_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "engine.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "aigc.cli", "engine", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(
                        b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        for payload in PAYLOADS:
            answer = _exchange(port, payload)
            assert answer.startswith(b"HTTP/1.0 400 "), payload[:40]
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b"application/json" in head.lower(), head
            error = json.loads(body)["error"]  # JSON like every other refusal, naming no bytes
            assert error["code"] == "bad_request" and error["field"] == "request", error
            assert error["message"].startswith("request: could not be read as HTTP/1.1 ("), error
            assert TOKEN.encode() not in answer
        time.sleep(0.5)  # let the engine write its lines
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    assert TOKEN not in text  # neither from the token in the environment nor from the requests
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    refused = [r for r in lines if r["msg"] == "malformed HTTP request refused"]
    # (aiohttp logs a first request that is not HTTP at all at debug level: no line for it)
    assert len(refused) == 2, text[-2000:]
    assert {r["error"] for r in refused} <= {"BadHttpMessage", "LineTooLong", "BadStatusLine", "BadHttpMethod",
                                             "InvalidHeader"}
    assert all(r["status"] == 400 and r["level"] == "warning" and "exc" not in r for r in refused)
