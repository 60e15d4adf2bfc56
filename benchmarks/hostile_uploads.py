"""Hostile-upload suite against the real service: the server's peak memory (target < 1 GB)
and each refusal's status and time.

    python benchmarks/hostile_uploads.py

Starts `floodwarn serve` (its worker too) on a fresh SQLite store, then sends what a careless or
hostile client might: NetCDF files of a few kilobytes declaring 16×4000×4000 and 10¹³ cells,
600 MB uploads (declared, and streamed without a declared size), a 296-character name, glob
and path characters in names, a GRIB2 file with flipped bits, a 300-character `inbox_file`, a
link in the inbox pointing outside the data folder. The server's resident memory is sampled
every 20 ms throughout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.api.test_hostile import declared_only

ADMIN = "fw_bench_hostile_0123456789abcdef"
GFS_GRIB2 = (Path(__file__).parents[1] / "tests" / "data" / "rainfall"
             / "gfs_20110110_12z_f114-120_precip.grib2")


def _declared_bytes(path: Path, shape: tuple[int, int, int]) -> bytes:
    declared_only(path, shape)
    return path.read_bytes()


def _streamed(total_mb: int, boundary: str):  # type: ignore[no-untyped-def]
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"forecast\"; "
           f"filename=\"grande.nc\"\r\n\r\n").encode()
    chunk = b"\0" * (1 << 20)
    for _ in range(total_mb):
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "FLOODWARN_DATA_DIR": str(data), "FLOODWARN_ADMIN_KEY": ADMIN}
        server = subprocess.Popen([sys.executable, "-c", "from api.cli import app; app()",
                                   "serve", "--port", str(port), "--no-demo"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base, headers = f"http://127.0.0.1:{port}", {"X-API-Key": ADMIN}
        peak = {"rss": 0}
        done = threading.Event()

        def sample() -> None:
            process = psutil.Process(server.pid)
            while not done.is_set():
                try:
                    peak["rss"] = max(peak["rss"], process.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.02)

        try:
            for _ in range(300):
                try:
                    httpx.get(base + "/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            idle = psutil.Process(server.pid).memory_info().rss
            threading.Thread(target=sample, daemon=True).start()
            corrupt = bytearray(GFS_GRIB2.read_bytes())
            for index in np.random.default_rng(7).integers(200, len(corrupt) - 10, 400):
                corrupt[index] ^= 0xFF
            outside = work / "outside.nc"
            outside.write_bytes(b"secret")
            (data / "inbox").mkdir(parents=True, exist_ok=True)
            os.symlink(outside, data / "inbox" / "enlace.nc")
            boundary = "floodwarn-bench"
            cases = [
                ("NetCDF declaring 16×4000×4000", lambda: httpx.post(
                    f"{base}/runs/upload", headers=headers, timeout=120, files={
                        "forecast": ("enorme.nc", _declared_bytes(work / "a.nc",
                                                                   (16, 4000, 4000)))})),
                ("NetCDF declaring 10¹³ cells", lambda: httpx.post(
                    f"{base}/runs/upload", headers=headers, timeout=120, files={
                        "forecast": ("inmenso.nc", _declared_bytes(
                            work / "b.nc", (1000, 100_000, 100_000)))})),
                ("600 MB streamed, no declared size", lambda: httpx.post(
                    f"{base}/runs/upload", timeout=300, content=_streamed(600, boundary),
                    headers={**headers, "Content-Type":
                             f"multipart/form-data; boundary={boundary}"})),
                ("296-character name", lambda: httpx.post(
                    f"{base}/runs/upload", headers=headers, timeout=60,
                    files={"forecast": ("x" * 293 + ".nc", b"CDF")})),
                ("glob name x[1].nc", lambda: httpx.post(
                    f"{base}/runs/upload", headers=headers, timeout=60,
                    files={"forecast": ("x[1].nc", b"CDF")})),
                ("GRIB2 with flipped bits", lambda: httpx.post(
                    f"{base}/runs/upload", headers=headers, timeout=60,
                    files={"forecast": ("gfs_danado.grib2", bytes(corrupt))})),
                ("300-character inbox_file", lambda: httpx.post(
                    f"{base}/runs", headers=headers, timeout=60,
                    json={"inbox_file": "y" * 297 + ".nc"})),
                ("link in the inbox", lambda: httpx.post(
                    f"{base}/runs", headers=headers, timeout=60,
                    json={"inbox_file": "enlace.nc"})),
            ]
            print(f"server idle: {idle / 2**20:.0f} MB")
            for label, send in cases:
                start = time.perf_counter()
                try:
                    answer = send()
                    outcome = f"{answer.status_code} {answer.json()['detail'][:90]}"
                except httpx.HTTPError as exc:
                    outcome = f"connection closed by the server ({type(exc).__name__})"
                print(f"  {label:<36} {time.perf_counter() - start:6.2f} s  {outcome}")
            runs = httpx.get(f"{base}/runs", headers=headers, timeout=10).json()
            left = sorted(p.name for p in (data / "uploads").glob("*")) \
                if (data / "uploads").exists() else []
        finally:
            done.set()
            server.terminate()
            server.wait(timeout=60)
    print(f"runs queued by the suite: {len(runs)}; files left in uploads: {len(left)}")
    print(f"server peak memory through the suite: {peak['rss'] / 2**20:.0f} MB "
          f"(target < 1024 MB)")


if __name__ == "__main__":
    main()
