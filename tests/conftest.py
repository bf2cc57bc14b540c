"""Shared fixtures: the real SmolLM2 model, one embedded engine, and a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ponder import models

TEST_MODEL = "smollm2-135m"


@pytest.fixture(scope="session")
def smol_path() -> Path:
    return models.resolve(TEST_MODEL)


@pytest.fixture(scope="session")
def engine(smol_path):
    from ponder.backends.llamacpp import EngineConfig, LlamaCppGenerator

    gen = LlamaCppGenerator(smol_path, EngineConfig(n_ctx=8192, n_slots=32), name=TEST_MODEL)
    yield gen
    gen.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """``python -m llama_cpp.server`` serving SmolLM2 on 127.0.0.1, started and stopped by the test."""

    def __init__(self, model_path: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log
        self.model_path = model_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> LoopbackServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", "2048", "--model_alias", "smol", "--n_threads", str(os.cpu_count() or 1)]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not come up in {timeout}s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def llama_server(smol_path, tmp_path_factory):
    server = LoopbackServer(smol_path, tmp_path_factory.mktemp("server") / "server.log").start()
    yield server
    server.stop()


REAL_MODEL_FIXTURES = {"engine", "smol_path", "llama_server"}


def pytest_collection_modifyitems(config, items):
    """A test that drives the real model (it asks for one of the real-model fixtures, directly or through another
    fixture) is an end-to-end test: ``-m e2e`` selects them, ``-m "not e2e"`` the fast unit tests."""
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
