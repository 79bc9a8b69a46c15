"""The data cache: registry wheels that carry public data sets, verified and unpacked.

MovieLens-100K (and its knowledge graph, source ``ml-100k-kg``) ships inside the ``recbole``
wheel and the Open Bandit Dataset sample inside the ``obp`` wheel. ``fetch`` downloads the wheel with pip (no dependencies, nothing installed),
checks its sha256 against the pinned value, and extracts only the data files into
``$WHYREC_CACHE/<source>/`` with a ``manifest.json`` of every extracted file's size and sha256.
``ensure`` is what loaders call: it verifies the files against the manifest and re-extracts when
the cache is missing, corrupted or truncated (a clear DataError when that is impossible).
Nothing of these data sets is committed to the repository.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from whyrec.atomic import write_json
from whyrec.errors import DataError


@dataclass(frozen=True)
class Source:
    """A registry wheel that carries data, and which of its files to extract."""

    key: str  # folder under the cache dir
    requirement: str  # what pip downloads
    wheel: str  # the wheel's file name
    sha256: str  # of the wheel, pinned
    prefix: str  # path inside the wheel of the data folder
    suffixes: tuple[str, ...]  # extract files under prefix whose names end with one of these
    description: str

    def wanted(self, member: str) -> bool:
        return member.startswith(self.prefix) and member.endswith(self.suffixes) and not member.endswith("/")


SOURCES: dict[str, Source] = {
    "ml-100k": Source(
        key="ml-100k",
        requirement="recbole==1.2.1",
        wheel="recbole-1.2.1-py3-none-any.whl",
        sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        prefix="recbole/dataset_example/ml-100k/",
        suffixes=("ml-100k.inter", "ml-100k.item", "ml-100k.user"),
        description="MovieLens-100K (GroupLens, research use) from the recbole 1.2.1 wheel",
    ),
    "obd": Source(
        key="obd",
        requirement="obp==0.4.1",
        wheel="obp-0.4.1-py3-none-any.whl",
        sha256="87dec9caf4283c25ab13036532e0a24566f1c7bdcad1653a8ded43b2f5ef8208",
        prefix="obp/dataset/obd/",
        suffixes=(".csv",),
        description="Open Bandit Dataset sample (ZOZO, CC BY 4.0) from the obp 0.4.1 wheel",
    ),
    # The knowledge graph of ml-100k (Freebase facts from KB4Rec: .kg triples, .link item ->
    # entity), from the same pinned wheel, in its own folder so the ratings cache stays as it was.
    "ml-100k-kg": Source(
        key="ml-100k-kg",
        requirement="recbole==1.2.1",
        wheel="recbole-1.2.1-py3-none-any.whl",
        sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        prefix="recbole/dataset_example/ml-100k/",
        suffixes=("ml-100k.kg", "ml-100k.link"),
        description="the MovieLens-100K knowledge graph (Freebase via KB4Rec) from the recbole 1.2.1 wheel",
    ),
}

MANIFEST = "manifest.json"


def cache_dir() -> Path:
    """``$WHYREC_CACHE``, else ``$XDG_CACHE_HOME/whyrec``, else ``~/.cache/whyrec``: one location
    for `make demo`/`make test` and for `whyrec` run by hand."""
    if os.environ.get("WHYREC_CACHE"):
        return Path(os.environ["WHYREC_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "whyrec"


def source_dir(key: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / SOURCES[key].key


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# -- download --------------------------------------------------------------------------
def download_wheel(src: Source, dest: Path) -> Path:
    """``pip download --no-deps <requirement>`` into ``dest``; returns the wheel path.

    ``$WHYREC_WHEELHOUSE`` (a folder holding the wheel) is used instead when set, for machines
    without access to the package registry; the hash is checked either way.
    """
    house = os.environ.get("WHYREC_WHEELHOUSE")
    if house and (Path(house) / src.wheel).is_file():
        return Path(house) / src.wheel
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), src.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest / src.wheel
    if proc.returncode != 0 or not wheel.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataError(
            f"could not download {src.requirement} with pip ({tail[0]}); check access to the package "
            f"registry, or put {src.wheel} in a folder and set WHYREC_WHEELHOUSE to it"
        )
    return wheel


def verify_wheel(src: Source, wheel: Path) -> None:
    digest = sha256_file(wheel)
    if digest != src.sha256:
        raise DataError(
            f"{wheel}: sha256 {digest[:16]}... does not match the pinned {src.sha256[:16]}... of "
            f"{src.wheel}; refusing to extract it (delete the file and run `whyrec datasets fetch` again)"
        )


def extract(src: Source, wheel: Path, root: Path | None = None) -> Path:
    """Extract only ``src``'s data files from a verified wheel into the cache, atomically.

    Files go to a temporary sibling folder first, then replace ``<cache>/<key>`` in one rename,
    so a crash never leaves a half-extracted cache that looks complete.
    """
    verify_wheel(src, wheel)
    target = source_dir(src.key, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{src.key}.", dir=target.parent))
    try:
        files: dict[str, dict] = {}
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if not src.wanted(info.filename):
                    continue
                rel = info.filename[len(src.prefix):]
                if ".." in Path(rel).parts or rel.startswith("/"):
                    raise DataError(f"{wheel}: unsafe member path {info.filename!r}")
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, open(out, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
                files[rel] = {"sha256": sha256_file(out), "size": out.stat().st_size}
        if not files:
            raise DataError(f"{wheel}: no data files under {src.prefix}; is this the right wheel?")
        write_json(tmp / MANIFEST, {"source": src.wheel, "requirement": src.requirement,
                                    "wheel_sha256": src.sha256, "files": files})
        old = None
        if target.exists():
            old = target.with_name(f".{src.key}.old.{os.getpid()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def fetch(key: str, *, force: bool = False, root: Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Make ``<cache>/<key>`` hold the verified data of source ``key``; returns the folder."""
    src = SOURCES[key]
    target = source_dir(key, root)
    if not force and not problems(key, root=root):
        return target
    with tempfile.TemporaryDirectory(prefix="whyrec-fetch-") as tmp:
        if log:
            house = os.environ.get("WHYREC_WHEELHOUSE")
            where = f"the wheelhouse {house} (WHYREC_WHEELHOUSE)" if house else "the package registry"
            log(f"taking {src.requirement} from {where} and extracting its data into {target}")
        wheel = download_wheel(src, Path(tmp))
        return extract(src, wheel, root)


# -- verification ------------------------------------------------------------------------
def problems(key: str, files: Iterable[str] | None = None, root: Path | None = None) -> list[str]:
    """What is wrong with the cached copy of ``key`` (empty list when it is intact).

    ``files`` limits the check to those manifest entries (a loader hashes only what it reads).
    """
    target = source_dir(key, root)
    man_path = target / MANIFEST
    if not man_path.is_file():
        return [f"{target} has no {MANIFEST} (not fetched yet)"]
    try:
        manifest = json.loads(man_path.read_text())
        entries: dict = manifest["files"]
    except (ValueError, KeyError) as exc:
        return [f"{man_path} is unreadable ({exc})"]
    wanted = list(files) if files is not None else list(entries)
    out = []
    for rel in wanted:
        entry = entries.get(rel)
        path = target / rel
        if entry is None:
            out.append(f"{rel} is not in {man_path}")
        elif not path.is_file():
            out.append(f"{path} is missing")
        elif path.stat().st_size != entry["size"]:
            size = path.stat().st_size
            out.append(f"{path} has {size} bytes, expected {entry['size']} ({'truncated' if size < entry['size'] else 'grown'}?)")
        elif sha256_file(path) != entry["sha256"]:
            out.append(f"{path} does not match its sha256 in {MANIFEST} (corrupted)")
    return out


def ensure(key: str, files: Iterable[str], root: Path | None = None) -> Path:
    """The cached folder of ``key`` with ``files`` verified; fetches or re-extracts when needed.

    Prints one line to stderr when it has to fetch, so a first run says why it pauses.
    """
    files = list(files)
    found = problems(key, files, root)
    if not found:
        return source_dir(key, root)
    first_time = not (source_dir(key, root) / MANIFEST).is_file()
    why = "not in the cache" if first_time else f"damaged in the cache ({found[0]})"
    print(f"whyrec: {SOURCES[key].description} is {why}; fetching {SOURCES[key].requirement}", file=sys.stderr)
    try:
        fetch(key, force=True, root=root)
    except DataError as exc:
        raise DataError(
            f"{SOURCES[key].description} is {why}, and fetching it failed: {exc}. "
            f"Run `whyrec datasets fetch` with registry access, or pass path= to the original files"
        ) from None
    left = problems(key, files, root)
    if left:
        raise DataError(f"{source_dir(key, root)}: still damaged after re-extraction ({left[0]}); "
                        f"delete the folder and run `whyrec datasets fetch`")
    return source_dir(key, root)


def status(root: Path | None = None) -> list[dict]:
    """One row per source: where it is cached and whether it is intact (for the CLI)."""
    rows = []
    for key, src in SOURCES.items():
        found = problems(key, root=root)
        rows.append({"source": key, "requirement": src.requirement, "path": str(source_dir(key, root)),
                     "ok": not found, "problem": found[0] if found else ""})
    return rows
