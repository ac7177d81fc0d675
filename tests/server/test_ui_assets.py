"""The vendored UI libraries match their manifest: every file listed with its sha256,
version, npm source and license text, and nothing in the static folder left unlisted
except the UI's own files."""

from __future__ import annotations

import hashlib
import json
import subprocess

from loopwise.server.ui.assets import STATIC_DIR, asset_url, digests

OWN_FILES = {"ui.css", "ui.js", "favicon.svg", "MANIFEST.json"}


def manifest() -> list[dict[str, str]]:
    return json.loads((STATIC_DIR / "MANIFEST.json").read_text())["assets"]


def test_every_sum_matches():
    for entry in manifest():
        data = (STATIC_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]


def test_entries_name_version_source_and_license():
    names = set()
    for entry in manifest():
        names.add(entry["name"])
        assert entry["version"], entry
        assert entry["license"] in {"0BSD", "MIT"}, entry
        assert entry["source"] == (
            f"https://registry.npmjs.org/{entry['name']}/-/{entry['name']}-{entry['version']}.tgz"
        )
        license_text = (STATIC_DIR / entry["license_file"]).read_text()
        assert len(license_text) > 100, entry["license_file"]
    assert names == {"htmx.org", "uplot"}


def test_nothing_unlisted():
    listed = {e["file"] for e in manifest()} | {e["license_file"] for e in manifest()}
    assert set(digests()) == listed | OWN_FILES


def test_urls_carry_the_content_hash():
    for name, digest in digests().items():
        full = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()
        assert full.startswith(digest)
        assert asset_url(name) == f"/static/{digest}/{name}"


def test_static_files_and_templates_are_not_ignored_by_git():
    folder = STATIC_DIR.parent
    files = [str(p) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    ignored = subprocess.run(
        ["git", "check-ignore", *files], cwd=folder, capture_output=True, text=True
    )
    assert ignored.stdout == "", ignored.stdout
