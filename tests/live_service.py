"""A real `floodwarn serve` in a child process, as a user starts it: the first start builds the
SYNTHETIC demo terrain and runs the demo storm in the worker. Shared by the tests that need the
README's main job finished (the serve test, the browser tests) and by the map benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ADMIN_KEY = "fw_test_admin_0123456789"
SENDER = "pruebas@proteccioncivil.gob.sv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveService:
    process: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    log_path: Path

    @property
    def admin(self) -> dict[str, str]:
        return {"X-API-Key": ADMIN_KEY}

    def new_key(self, role: str, name: str, municipality_id: str | None = None) -> str:
        body = {"role": role, "name": name}
        if municipality_id:
            body["municipality_id"] = municipality_id
        answer = httpx.post(f"{self.base}/keys", json=body, headers=self.admin, timeout=10)
        answer.raise_for_status()
        return str(answer.json()["key"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_service(workdir: Path, *options: str, config_lines: tuple[str, ...] = (),
                  timeout_s: float = 300) -> LiveService:
    """Start the service on a free port with its data in ``workdir/data`` and a settings file
    naming the admin key and sender; returns once it answers /health."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "floodwarn.env"
    config.write_text("\n".join((f"FLOODWARN_ADMIN_KEY={ADMIN_KEY}",
                                 f"FLOODWARN_SENDER={SENDER}", *config_lines)) + "\n")
    port = free_port()
    log_path = workdir / "serve.log"
    env = {**os.environ, "FLOODWARN_DATA_DIR": str(workdir / "data")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import app; app()", "serve", "--port", str(port),
             "--config", str(config), *options], env=env, stdout=log, stderr=subprocess.STDOUT)
    service = LiveService(process, f"http://127.0.0.1:{port}", workdir / "data", log_path)
    deadline = time.time() + timeout_s
    while True:
        try:
            httpx.get(f"{service.base}/health", timeout=2)
            return service
        except httpx.TransportError:
            if process.poll() is not None:
                raise AssertionError(service.log()) from None
            if time.time() > deadline:
                service.stop()
                raise AssertionError(f"the service did not start in {timeout_s:.0f} s") from None
            time.sleep(0.3)


def wait_for_demo_run(service: LiveService, timeout_s: float = 900) -> dict[str, object]:
    """The demo run once it has finished (AssertionError with its error if it failed)."""
    deadline = time.time() + timeout_s
    while True:
        runs = httpx.get(f"{service.base}/runs", headers=service.admin, timeout=10).json()
        if runs and runs[0]["status"] in ("succeeded", "failed"):
            break
        if time.time() > deadline:
            raise AssertionError(f"the demo run did not finish in {timeout_s:.0f} s: {runs}")
        time.sleep(1)
    assert runs[0]["status"] == "succeeded", runs[0]["error"]
    return dict(runs[0])
