"""A raw JSON-RPC peer of `verity serve` over stdio: writes any bytes, collects every answer by
id, and probes with `ping` whether the server still answers."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench._reliability_common import ROOT, FakeModel, serve_command, serve_env, stop

PROTOCOL = "2025-11-25"


class StdioPeer:
    """`verity serve` (stdio, fake model) with its answers gathered by a reader thread."""

    def __init__(self, model: FakeModel, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.stderr = (home / "serve.log").open("wb")
        self.process = subprocess.Popen(
            serve_command(model, home),
            cwd=ROOT,
            env=serve_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,
        )
        self.answers: dict[str, dict[str, Any]] = {}
        self.unreadable = 0
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._probes = 0

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self.unreadable += 1
                continue
            if isinstance(message, dict) and "id" in message and "method" not in message:
                with self._arrived:
                    self.answers[json.dumps(message["id"])] = message
                    self._arrived.notify_all()

    def send(self, data: bytes) -> bool:
        """Write raw bytes; False once the server's stdin is closed (it is gone)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def request(self, message: dict[str, Any]) -> bool:
        return self.send(json.dumps(message).encode() + b"\n")

    def wait_for(self, request_id: Any, timeout: float) -> dict[str, Any] | None:
        """The answer to `request_id`, or None if none came within `timeout` seconds."""
        key = json.dumps(request_id)
        deadline = time.monotonic() + timeout
        with self._arrived:
            while key not in self.answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    return self.answers.get(key)
                self._arrived.wait(min(left, 0.2))
            return self.answers[key]

    def handshake(self, timeout: float = 60) -> bool:
        """initialize + initialized, as a 2025-11-25 client does."""
        params = {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "reliability", "version": "0"},
        }
        self.request({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": params})
        answered = self.wait_for("init", timeout)
        self.request({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answered is not None and "result" in answered

    def alive(self, timeout: float = 15) -> bool:
        """Whether the server still answers a ping."""
        self._probes += 1
        probe = f"probe-{self._probes}"
        self.request({"jsonrpc": "2.0", "id": probe, "method": "ping"})
        answered = self.wait_for(probe, timeout)
        return answered is not None and "result" in answered

    def close(self) -> int | None:
        """End the session by closing stdin; the exit code (None if it had to be killed)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            code: int | None = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
        stop(self.process)
        self.stderr.close()
        return code
