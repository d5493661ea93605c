"""The vendored GraphiQL: which npm packages, at which versions, and which of their files.

``make vendor-graphiql`` (``python -m tradecert.graphiql.vendor``) fetches the pinned
tarballs with ``npm pack`` (npm checks each against the registry's integrity; we check it
again against ``npm view … dist.integrity``), copies out only the browser bundles, the CSS
and the licences, and rewrites ``vendor/manifest.json`` (SHA-256 per file) and
``vendor/NOTICE``. The files are kept byte for byte as published, so anyone can check
them against the registry. ``verify()`` compares the files with the manifest (a test runs it).

GraphiQL stays on 3.x: 4 and later ship no UMD bundle, and the page loads plain scripts
(no bundler in this project). React stays on 18, the last major with UMD builds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR_DIR = Path(__file__).parent / "vendor"
MANIFEST = "manifest.json"
NOTICE = "NOTICE"

# The one place the versions are pinned.
PINS: dict[str, str] = {
    "react": "18.3.1",
    "react-dom": "18.3.1",
    "graphiql": "3.9.0",
    "@graphiql/plugin-explorer": "3.2.6",
    "graphiql-explorer": "0.9.0",  # bundled inside plugin-explorer's UMD build; vendored for its licence only
}


@dataclass(frozen=True)
class Pick:
    package: str
    member: str  # path inside the tarball, under package/
    name: str  # file name in vendor/


PICKS: tuple[Pick, ...] = (
    Pick("react", "umd/react.production.min.js", "react.production.min.js"),
    Pick("react", "LICENSE", "LICENSE.react"),
    Pick("react-dom", "umd/react-dom.production.min.js", "react-dom.production.min.js"),
    Pick("react-dom", "LICENSE", "LICENSE.react-dom"),
    Pick("graphiql", "graphiql.min.js", "graphiql.min.js"),
    Pick("graphiql", "graphiql.min.css", "graphiql.min.css"),
    Pick("graphiql", "LICENSE", "LICENSE.graphiql"),
    Pick("@graphiql/plugin-explorer", "dist/index.umd.js", "plugin-explorer.umd.js"),
    Pick("@graphiql/plugin-explorer", "dist/style.css", "plugin-explorer.css"),
    Pick("graphiql-explorer", "LICENSE", "LICENSE.graphiql-explorer"),
)

# @graphiql/plugin-explorer's tarball carries no LICENSE file; its package.json says MIT and
# it lives in the graphql/graphiql repository, whose MIT licence is LICENSE.graphiql.
LICENCE_NOTES = {"@graphiql/plugin-explorer": "no LICENSE file in its tarball; MIT per its package.json, "
                                              "the graphql/graphiql repository's licence: see LICENSE.graphiql"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npm(*args: str, cwd: Path) -> str:
    done = subprocess.run(["npm", *args, "--loglevel=error"], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"npm {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def _fetch(package: str, version: str, work: Path) -> tuple[tarfile.TarFile, dict[str, str]]:
    spec = f"{package}@{version}"
    [packed] = json.loads(_npm("pack", "--json", "--pack-destination", str(work), spec, cwd=work))
    view = json.loads(_npm("view", "--json", spec, "dist.integrity", "dist.tarball", "license", cwd=work))
    tarball = (work / packed["filename"]).read_bytes()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if integrity != view["dist.integrity"]:
        raise SystemExit(f"{spec}: tarball integrity {integrity} differs from the registry's {view['dist.integrity']}")
    info = {"name": package, "version": version, "license": view["license"], "integrity": integrity,
            "tarball": view["dist.tarball"]}
    return tarfile.open(work / packed["filename"], "r:gz"), info


def refresh(vendor_dir: Path = VENDOR_DIR) -> dict[str, object]:
    """Fetch the pinned packages and rewrite vendor_dir: the picked files, manifest, NOTICE."""
    if shutil.which("npm") is None:
        raise SystemExit("npm is not installed (Debian: apt-get install npm)")
    files: dict[str, dict[str, str]] = {}
    packages: list[dict[str, str]] = []
    contents: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="tradecert-vendor-") as tmp:
        for package, version in PINS.items():
            archive, info = _fetch(package, version, Path(tmp))
            with archive:
                for pick in (p for p in PICKS if p.package == package):
                    member = archive.extractfile(f"package/{pick.member}")  # read one member; nothing is extracted
                    if member is None:
                        raise SystemExit(f"{package}@{version} has no regular file {pick.member}")
                    contents[pick.name] = member.read()
                    files[pick.name] = {"package": package, "from": pick.member, "sha256": sha256(contents[pick.name])}
            if package in LICENCE_NOTES:
                info["licenceNote"] = LICENCE_NOTES[package]
            packages.append(info)
    contents[NOTICE] = _notice(packages).encode()
    files[NOTICE] = {"package": "", "from": "", "sha256": sha256(contents[NOTICE])}
    vendor_dir.mkdir(parents=True, exist_ok=True)
    old = vendor_dir / MANIFEST
    if old.exists():
        for name in json.loads(old.read_text(encoding="utf-8"))["files"]:
            (vendor_dir / name).unlink(missing_ok=True)
    for name, data in contents.items():
        (vendor_dir / name).write_bytes(data)
    manifest: dict[str, object] = {"packages": packages, "files": dict(sorted(files.items()))}
    old.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _notice(packages: list[dict[str, str]]) -> str:
    lines = ["Third-party files in this directory, as published on the npm registry (unchanged).",
             "Refresh with `make vendor-graphiql`; checksums in manifest.json.", ""]
    for info in packages:
        picked = ", ".join(p.name for p in PICKS if p.package == info["name"])
        lines += [f"{info['name']} {info['version']} — licence {info['license']}", f"  {info['tarball']}",
                  f"  {info['integrity']}", f"  files: {picked}"]
        if "licenceNote" in info:
            lines.append(f"  note: {info['licenceNote']}")
        lines.append("")
    return "\n".join(lines)


def verify(vendor_dir: Path = VENDOR_DIR) -> list[str]:
    """What differs between vendor_dir and its manifest (an empty list when nothing does)."""
    manifest = json.loads((vendor_dir / MANIFEST).read_text(encoding="utf-8"))
    problems = []
    pinned = {p["name"]: p["version"] for p in manifest["packages"]}
    if pinned != PINS:
        problems.append(f"manifest versions {pinned} are not the pins {PINS}: run make vendor-graphiql")
    listed = set(manifest["files"])
    for name, entry in manifest["files"].items():
        path = vendor_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256(path.read_bytes()) != entry["sha256"]:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    for path in vendor_dir.iterdir():
        if path.name != MANIFEST and path.name not in listed:
            problems.append(f"{path.name}: not in the manifest")
    return problems


def main() -> None:
    manifest = refresh()
    problems = verify()
    if problems:
        raise SystemExit("\n".join(problems))
    files = manifest["files"]
    assert isinstance(files, dict)
    total = sum((VENDOR_DIR / name).stat().st_size for name in files)
    print(f"vendored {len(files)} files, {total:,} bytes, into {VENDOR_DIR}", file=sys.stderr)


if __name__ == "__main__":
    main()
