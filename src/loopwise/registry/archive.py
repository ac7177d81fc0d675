"""Model packages as tar archives: written as a stream, unpacked with checks.

Why: a package travels between the remote client and a server (``lw.log_model`` uploads
one, ``lw.load_model`` downloads one). A package folder goes out as a plain tar written
on the fly (:func:`archive_folder`: headers computed first, so the length is known and
nothing is staged on disk). What comes in is untrusted: :func:`extract_archive` writes
regular files only, never a link or a device, refuses absolute paths and ``..``, and stops
at a byte and a file budget (a small gzip can unpack to terabytes); :func:`check_package`
then holds the folder to its manifest (strict JSON, a known flavor, exactly the files it
lists with their sizes and sha256) before anything is registered or loaded.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from loopwise.errors import InvalidInput

#: Files in one package at most (a flavor writes a handful).
MAX_FILES = 10_000
#: The largest manifest read (it lists files and a signature; a few KiB in practice).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
#: A file of the package cache, not of the package (see :mod:`loopwise.registry.loading`).
CACHE_MARKER = ".complete"
MANIFEST_FILE = "loopwise_model.json"
_BLOCK = 512
_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HOW = "build it with lw.log_model (or loopwise.registry.packaging.save_package)"


# -- out --------------------------------------------------------------------------------------


def _header(path: str, size: int) -> bytes:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime, info.type = size, 0o644, 0, tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> int:
    return -size % _BLOCK


def archive_folder(root: Path) -> tuple[int, Iterator[bytes]]:
    """(length in bytes, the chunks) of a tar of every file under ``root`` (the cache
    marker aside), in path order. Files are read as the chunks are consumed."""
    files = sorted(
        (p.relative_to(root).as_posix(), p)
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix() != CACHE_MARKER
    )
    entries = [(_header(name, path.stat().st_size), path) for name, path in files]
    length = 2 * _BLOCK + sum(
        len(head) + path.stat().st_size + _padding(path.stat().st_size) for head, path in entries
    )
    return length, _chunks(entries)


def _chunks(entries: list[tuple[bytes, Path]]) -> Iterator[bytes]:
    for head, path in entries:
        yield head
        size = 0
        with open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                yield chunk
        yield b"\0" * _padding(size)
    yield b"\0" * (2 * _BLOCK)


# -- in ---------------------------------------------------------------------------------------


def _member_path(name: str) -> PurePosixPath:
    """The relative path of an archive member, or InvalidInput when it could land outside
    the folder it is unpacked into."""
    path = PurePosixPath(name)
    if (
        not name
        or "\0" in name
        or "\\" in name
        or path.is_absolute()
        or re.match(r"^[A-Za-z]:", name)
        or ".." in path.parts
    ):
        raise InvalidInput(
            f"the archive's member {name[:200]!r} is not a relative path inside the package "
            f"(absolute paths and '..' are refused); {_HOW}."
        )
    return path


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link to {member.linkname[:200]!r}"
    if member.islnk():
        return f"a hard link to {member.linkname[:200]!r}"
    return "a device, a pipe or another special file"


def extract_archive(
    archive: Path, dest: Path, *, max_bytes: int, max_files: int = MAX_FILES
) -> None:
    """Unpack the tar (plain, gzip, bz2 or xz) at ``archive`` into the empty folder ``dest``.

    Only folders and regular files are written, each at a checked relative path; a link,
    a device, a member that clashes with another, more than ``max_files`` members or more
    than ``max_bytes`` bytes unpacked is an InvalidInput naming it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            total = 0
            for count, member in enumerate(tar, 1):
                if count > max_files:
                    raise InvalidInput(
                        f"the archive holds more than {max_files:,} members, and a model "
                        f"package holds a handful of files; {_HOW}."
                    )
                if not (member.isdir() or member.isfile()):
                    raise InvalidInput(
                        f"the archive's member {member.name[:200]!r} is {_kind(member)}; a "
                        f"model package holds only files and folders; {_HOW}."
                    )
                total += member.size
                if total > max_bytes:
                    raise InvalidInput(
                        f"the archive unpacks to more than {max_bytes:,} bytes, the limit "
                        "for a model package here; ask the server's operator to raise it."
                    )
                _unpack(tar, member, dest)
    except OSError as e:
        if e.errno is not None:  # the disk failed, not the archive
            raise
        raise InvalidInput(f"the body is not a readable tar archive ({e}); {_HOW}.") from e
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise InvalidInput(f"the body is not a readable tar archive ({e}); {_HOW}.") from e


def _unpack(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """Write one folder or regular file of the archive under ``dest``."""
    target = dest.joinpath(*_member_path(member.name).parts)
    try:
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is None:  # not a regular file after all
            raise InvalidInput(f"the archive's member {member.name[:200]!r} has no content.")
        with source, open(target, "xb") as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
    except (FileExistsError, IsADirectoryError, NotADirectoryError):
        raise InvalidInput(
            f"the archive's member {member.name[:200]!r} clashes with another member of "
            f"the same path; {_HOW}."
        ) from None


# -- checked ----------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise InvalidInput(
            f"the archive holds no {MANIFEST_FILE} at its top, so it is not a loopwise model "
            f"package; {_HOW}."
        )
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidInput(f"the package's {MANIFEST_FILE} is larger than 16 MiB; {_HOW}.")
    try:
        data = json.loads(path.read_bytes(), parse_constant=_refuse_constant, parse_float=_finite)
    except (ValueError, RecursionError) as e:
        raise InvalidInput(f"the package's {MANIFEST_FILE} is not valid JSON: {e}.") from e
    if not isinstance(data, dict):
        raise InvalidInput(f"the package's {MANIFEST_FILE} is not a JSON object; {_HOW}.")
    return data


def _file_entry(entry: Any) -> tuple[str, int, str]:
    if (
        not isinstance(entry, dict)
        or set(entry) != {"path", "size", "sha256"}
        or not isinstance(entry["path"], str)
        or isinstance(entry["size"], bool)
        or not isinstance(entry["size"], int)
        or entry["size"] < 0
        or not isinstance(entry["sha256"], str)
        or not _SHA256.fullmatch(entry["sha256"])
    ):
        raise InvalidInput(
            f"the package's manifest lists a file as {str(entry)[:200]}; each entry is "
            f"{{path, size, sha256}}; {_HOW}."
        )
    _member_path(entry["path"])
    return entry["path"], entry["size"], entry["sha256"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_package(root: Path) -> dict[str, Any]:
    """The manifest of the unpacked package at ``root`` once the folder holds exactly the
    files it lists, each with its recorded size and sha256, in a format and flavor this
    loopwise reads; an InvalidInput naming the first problem otherwise. Nothing is
    imported or unpickled here."""
    from loopwise.registry.flavors import FLAVORS
    from loopwise.registry.packaging import read_manifest

    data = _manifest(root)
    flavor = data.get("flavor")
    if not isinstance(flavor, str) or flavor not in FLAVORS:
        raise InvalidInput(
            f"the package's flavor {str(flavor)[:100]!r} is not one this server loads "
            f"({', '.join(FLAVORS)}); {_HOW}."
        )
    files = data.get("files")
    if not isinstance(files, list):
        raise InvalidInput(f"the package's manifest has no list of files; {_HOW}.")
    listed = [_file_entry(entry) for entry in files]
    try:
        read_manifest(root)  # the format version, then every field as the loader reads it
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, InvalidInput):
            raise
        raise InvalidInput(f"the package's manifest cannot be read: {e!r}; {_HOW}.") from e
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {
        MANIFEST_FILE
    }
    names = {path for path, _, _ in listed}
    if extra := sorted(present - names):
        raise InvalidInput(
            f"the package holds files its manifest does not list: {', '.join(extra[:5])}; {_HOW}."
        )
    for path, size, sha in listed:
        local = root / path
        if path not in present:
            raise InvalidInput(f"the package lacks {path!r}, which its manifest lists; {_HOW}.")
        if local.stat().st_size != size or _sha256(local) != sha:
            raise InvalidInput(
                f"{path!r} in the package does not match the size and sha256 its manifest "
                "records: the package is corrupt or was edited."
            )
    return data


__all__ = ["archive_folder", "check_package", "extract_archive"]
