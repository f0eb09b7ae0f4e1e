"""Remote files: a URL and its published hash in, a verified file in the data cache out.

pooch does the downloading (atomic writes through a temporary file, hash check, a retry on a
transient error, progress bars, a registry of many files under one base URL); this module adds
what a benchmark needs around it:

- **One cache layout for everything**: ``$MMBENCH_DATA_DIR/HOST/PATH`` (default
  ``~/.cache/mmbench/data``), the layout of a mirror, so a filled cache can serve as one.
- **Mirrors**: ``MMBENCH_MIRROR`` (``--mirror``) maps ``https://HOST/PATH`` to
  ``MIRROR/HOST/PATH``, a local folder or another HTTP server; the hashes stay the same.
- **Bounded failures**: a host that cannot be reached fails within ~7 s (3 s connect timeout,
  two attempts), a server that accepts and never answers within ~17 s (8 s read timeout, two
  attempts); every error names the URL, the cache path and the mirror option, a hash mismatch
  gives both hashes and leaves no file behind.
- **Archives** (zip, tar.*) unpacked once, beside the archive, through a temporary folder.
- **Unpublished hashes** (``hash: unpublished``): the first fetch pins the file's SHA-256 in the
  suite's lock file and later fetches verify against it.

Length: one path from a URL to a verified cached file (~440 lines): mirrors, registries,
archives and the lock file share its hashing and error messages.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mmbench.data.spec import HASH_PATTERN
from mmbench.errors import DataError

DATA_DIR_ENV = "MMBENCH_DATA_DIR"
MIRROR_ENV = "MMBENCH_MIRROR"
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 8.0
RETRIES = 1  # one more attempt after a transient error (pooch waits 1 s in between)
FETCH_THREADS = 8
UNPUBLISHED = "unpublished"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MIRROR_HINT = (
    f"without internet, pass --mirror DIR_OR_URL (or set {MIRROR_ENV}) to a copy laid out as "
    "HOST/PATH, or put the file at the cache path"
)


@dataclass
class Fetched:
    """One file in the cache: where it came from, whether this call downloaded it."""

    url: str
    path: Path
    size: int
    downloaded: bool
    hash: str


def data_dir() -> Path:
    """``$MMBENCH_DATA_DIR``, else the user cache dir (``~/.cache/mmbench/data`` on Linux)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("mmbench")) / "data"


def mirror_from_env() -> str | None:
    return os.environ.get(MIRROR_ENV) or None


def cache_path(url: str) -> Path:
    """Where ``url`` is kept: ``data_dir()/HOST/PATH``, the layout of a mirror."""
    return data_dir() / _host_path(url)


def mirrored(url: str, mirror: str | None) -> str:
    """``https://HOST/PATH`` as ``MIRROR/HOST/PATH`` (a URL or a local path); unchanged without one."""
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + _host_path(url)


def _host_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DataError(f"{url!r} is not an http(s) URL")
    path = parts.path.lstrip("/")
    if not path or ".." in Path(path).parts:
        raise DataError(f"{url!r} names no file")
    return f"{parts.netloc}/{path}"


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def pooch_hash(hash_text: str | None) -> str | None:
    """pooch's spelling: ``sha256:`` is its default, ``sha1:``/``md5:`` are prefixes."""
    if hash_text is None or hash_text == UNPUBLISHED:
        return None
    return (
        hash_text.lower().removeprefix("sha256:") if hash_text.startswith("sha256:") else hash_text
    )


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _algorithm(known: str) -> str:
    return known.split(":", 1)[0].lower() if ":" in known else "sha256"


def fetch_file(
    url: str,
    known_hash: str | None,
    *,
    mirror: str | None = None,
    progress: bool = False,
) -> Fetched:
    """``url`` verified against ``known_hash`` (None: not checked) in the cache; downloaded once."""
    target = cache_path(url)
    return _fetch_many({target.name: (url, known_hash)}, target.parent, mirror, progress)[0]


def fetch_registry(
    base_url: str,
    registry: dict[str, str],
    *,
    mirror: str | None = None,
    progress: bool = False,
    threads: int = FETCH_THREADS,
) -> list[Fetched]:
    """Every file of ``registry`` (name -> hash) under ``base_url``; the first failure stops all."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    files: dict[str, tuple[str, str | None]] = {n: (base + n, h) for n, h in registry.items()}
    return _fetch_many(files, cache_path(base + "x").parent, mirror, progress, threads)


def _fetch_many(
    files: dict[str, tuple[str, str | None]],
    folder: Path,
    mirror: str | None,
    progress: bool,
    threads: int = 1,
) -> list[Fetched]:
    import pooch

    pooch.get_logger().setLevel("WARNING")  # not one line per file of a 3,000-file registry
    for name in files:  # pooch creates missing parents without exist_ok: not from threads
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
    known = {name: pooch_hash(h) for name, (_, h) in files.items()}
    urls = {name: mirrored(url, mirror) for name, (url, _) in files.items()}
    store = pooch.create(
        path=folder, base_url="", registry=known, urls=urls, retry_if_failed=RETRIES
    )
    one_bar = progress and len(files) > 1
    downloader = _downloader(progress and not one_bar)
    bar = _bar(len(files), folder) if one_bar else None
    lock = threading.Lock()

    def fetch(name: str) -> Fetched:
        result = _fetch_one(store, name, files[name][0], urls[name], files[name][1], downloader)
        if bar is not None:
            with lock:
                bar.update(1)
        return result

    try:
        if threads <= 1 or len(files) == 1:
            return [fetch(name) for name in files]
        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(fetch, name) for name in files]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for f in pending:
                f.cancel()
            for f in futures:
                if f.done() and not f.cancelled() and f.exception() is not None:
                    raise f.exception()  # type: ignore[misc]
            return [f.result() for f in futures]
    finally:
        if bar is not None:
            bar.close()


def _bar(total: int, folder: Path) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc=f"fetch {folder.name}", leave=False)


def _downloader(progress: bool) -> Callable[..., Any]:
    """HTTP(S) through pooch with mmbench's timeouts; a local mirror folder is copied."""
    import pooch

    http = pooch.HTTPDownloader(progressbar=progress, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))

    def download(url: str, output_file: str, store: Any) -> None:
        if _is_url(url):
            http(url, output_file, store)
        else:
            shutil.copyfile(Path(url).expanduser(), output_file)

    return download


def _fetch_one(
    store: Any,
    name: str,
    url: str,
    source: str,
    known_hash: str | None,
    downloader: Callable[..., Any],
) -> Fetched:
    """One file through pooch; every failure becomes a DataError naming URL, cache and mirror."""
    target = Path(store.abspath) / name
    existed = target.is_file() and (known_hash is None or _matches(target, pooch_hash(known_hash)))
    if existed:  # verified just now: pooch would hash it a second time
        return _verified(url, target, False, known_hash)
    if target.is_file():
        target.unlink()  # a cached file that no longer matches its hash is fetched again

    def checked(url_: str, output_file: str, store_: Any) -> None:
        downloader(url_, output_file, store_)
        expected = pooch_hash(known_hash)
        if expected is not None:
            algorithm = _algorithm(expected)
            actual = file_hash(Path(output_file), algorithm)
            if actual != expected.split(":")[-1].lower():
                raise HashMismatch(
                    f"hash mismatch for {url}{_via(source, url)}: expected "
                    f"{algorithm}:{expected.split(':')[-1].lower()}, got {algorithm}:{actual}; "
                    f"the download was removed (cache path {target}). The file changed at its "
                    "source, or the mirror holds another version"
                )

    start = time.monotonic()
    try:
        store.fetch(name, downloader=checked)
    except HashMismatch:
        raise
    except FileNotFoundError:
        raise DataError(
            f"{url} is not in the mirror: {source} does not exist (cache path {target})"
        ) from None
    except Exception as exc:
        raise DataError(
            f"could not download {url}{_via(source, url)}: {_reason(exc)} "
            f"({RETRIES + 1} attempts, {time.monotonic() - start:.0f} s). Cache path {target}; "
            f"{MIRROR_HINT}"
        ) from None
    return _verified(url, target, True, known_hash)


def _verified(url: str, target: Path, downloaded: bool, known_hash: str | None) -> Fetched:
    """The fetched file, its SHA-256 handed to the table fingerprint (which would otherwise
    read every file once more) when that is the hash it was verified against."""
    from mmbench.data.table import remember_file_sha256

    hash_text = known_hash or _sha256(target)
    known = pooch_hash(hash_text)
    if known is not None and _algorithm(known) == "sha256":
        remember_file_sha256(target, known.split(":")[-1])
    return Fetched(url, target, target.stat().st_size, downloaded, hash_text)


def _sha256(path: Path) -> str:
    return "sha256:" + file_hash(path)


class HashMismatch(DataError):
    """The bytes served are not the ones the suite pins."""


def _matches(path: Path, known: str | None) -> bool:
    if known is None:
        return True
    return file_hash(path, _algorithm(known)) == known.split(":")[-1].lower()


def _via(source: str, url: str) -> str:
    return "" if source == url else f" (from mirror {source})"


def _reason(exc: BaseException) -> str:
    """What went wrong, in words a user can act on."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.ConnectTimeout):
        return f"the host did not accept a connection within {CONNECT_TIMEOUT_S:.0f} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"the server accepted the connection but sent nothing for {READ_TIMEOUT_S:.0f} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the transfer was cut short (fewer bytes than the server announced)"
    if isinstance(exc, requests.ConnectionError):
        return "the host is unreachable (no route, refused or unknown name)"
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- registries and lock files


def read_registry(path: Path) -> dict[str, str]:
    """pooch's registry format: ``name hash`` per line, ``#`` comments."""
    if not path.is_file():
        raise DataError(f"registry file {str(path)!r} does not exist")
    registry: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not re.match(HASH_PATTERN, parts[1]) or parts[1] == UNPUBLISHED:
            raise DataError(f"{path}:{number}: expected 'NAME HASH', got {line!r}")
        registry[parts[0]] = parts[1]
    if not registry:
        raise DataError(f"registry file {str(path)!r} lists no file")
    return registry


def write_registry(path: Path, folder: Path, names: Iterable[str], header: str = "") -> None:
    """A registry of ``names`` under ``folder`` with their SHA-256 (e.g. from a mirror)."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    lines += [f"{name} {file_hash(folder / name)}" for name in sorted(names)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class LockFile:
    """``<suite>.lock``: SHA-256 pinned on the first fetch of files published without a hash."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, str]:
        import yaml

        if not self.path.is_file():
            return {}
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        return {str(k): str(v) for k, v in (data.get("pinned") or {}).items()}

    def pin(self, url: str, sha256: str) -> None:
        import yaml

        pinned = self.read()
        pinned[url] = sha256
        text = (
            "# Hashes pinned on first fetch for files their benchmark publishes without one.\n"
            "# Commit this file: later fetches (and mirrors) are verified against it.\n"
            + yaml.safe_dump({"pinned": dict(sorted(pinned.items()))}, sort_keys=False)
        )
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)


def fetch_pinned(
    url: str, hash_text: str, lock: LockFile, *, mirror: str | None, progress: bool
) -> Fetched:
    """A file with a published hash, or (``unpublished``) the hash its lock file pinned."""
    if hash_text != UNPUBLISHED:
        return fetch_file(url, hash_text, mirror=mirror, progress=progress)
    pinned = lock.read().get(url)
    fetched = fetch_file(url, pinned, mirror=mirror, progress=progress)
    if pinned is None:
        lock.pin(url, fetched.hash)
    return fetched


# ---------------------------------------------------------------- archives


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack(archive: Path) -> Path:
    """``archive`` unpacked once into ``<archive>.d/`` (through a temporary folder)."""
    target = archive.with_name(archive.name + ".d")
    if target.is_dir():
        return target
    tmp = Path(tempfile.mkdtemp(dir=archive.parent, prefix=".unpack-"))
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                _check_members(archive, zf.namelist(), tmp)
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
        os.replace(tmp, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        archive.unlink(missing_ok=True)
        raise DataError(
            f"archive {str(archive)!r} is truncated or corrupt ({type(exc).__name__}: {exc}); "
            "it was removed from the cache, fetch it again"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _check_members(archive: Path, names: list[str], into: Path) -> None:
    for name in names:
        resolved = (into / name).resolve()
        if into.resolve() not in resolved.parents and resolved != into.resolve():
            raise DataError(f"archive {str(archive)!r} has a member outside its folder: {name!r}")


def archive_members(folder: Path, pattern: str, url: str) -> list[Path]:
    """Files inside an unpacked archive matching ``pattern``; a missing one names what is there."""
    from mmbench.errors import did_you_mean

    matches = sorted(p for p in folder.glob(pattern) if p.is_file())
    if matches:
        return matches
    members = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    shown = ", ".join(members[:10]) + (" ..." if len(members) > 10 else "")
    raise DataError(
        f"archive {url} has no member {pattern!r}{did_you_mean(pattern, members)}; "
        f"it holds {len(members)} file(s): {shown}"
    )
