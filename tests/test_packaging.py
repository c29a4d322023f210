"""The three distributions as an index would hold them: built with ``uv build``, their
metadata and sdists checked, installed from their wheels into a fresh virtual environment
outside the repository, and a small app (offline provider, Starlette middleware, LangChain
router) run against them there. Dependencies resolve to the locked versions (from uv's cache,
else the package index)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
UV = REPOSITORY / ".tools" / "bin" / "uv"
APP = REPOSITORY / "tests" / "support" / "installed_app.py"
DISTRIBUTIONS = {
    "featbit_experiments": "featbit_experiments",
    "featbit_experiments_starlette": "featbit_experiments_starlette",
    "featbit_experiments_langchain": "featbit_experiments_langchain",
}
REPOSITORY_URL = "https://github.com/featbit/featbit-experiments-python"

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(600)]


@dataclass(frozen=True)
class Built:
    dist: Path
    work: Path

    def wheel(self, name: str) -> Path:
        return next(self.dist.glob(f"{name}-*.whl"))

    def sdist(self, name: str) -> Path:
        return next(self.dist.glob(f"{name}-*.tar.gz"))


def uv() -> str:
    found = str(UV) if UV.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv not found: run `make env` first")
    return found


def run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("packaging")
    dist = work / "dist"
    run(uv(), "build", "--all-packages", "--out-dir", dist, "--quiet", cwd=REPOSITORY)
    return Built(dist, work)


@pytest.fixture(scope="module")
def installed(built: Built) -> Iterator[Path]:
    """A fresh virtual environment outside the repository with the three wheels installed."""
    venv = built.work / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, venv, cwd=built.work)
    constraints = built.work / "constraints.txt"
    run(uv(), "export", "--frozen", "--all-packages", "--all-extras", "--no-hashes",
        "--no-emit-workspace", "--quiet", "-o", constraints, cwd=REPOSITORY)  # fmt: skip
    python = venv / "bin" / "python"
    wheels = [built.wheel(name) for name in DISTRIBUTIONS]
    run(uv(), "pip", "install", "--quiet", "--python", python, "-c", constraints, *wheels,
        cwd=built.work)  # fmt: skip
    yield python


def metadata(wheel: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode("utf-8"))
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    fields["Description"] = [message.get_payload()]  # type: ignore[list-item]
    return fields


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_each_wheel_carries_index_metadata(built: Built, name: str) -> None:
    fields = metadata(built.wheel(name))
    assert fields["License-Expression"] == ["MIT"] and fields["License-File"] == ["LICENSE"]
    assert any(c.startswith("Programming Language :: Python :: 3.10") for c in fields["Classifier"])
    assert fields["Keywords"] and any(REPOSITORY_URL in url for url in fields["Project-URL"])
    assert fields["Description-Content-Type"] == ["text/markdown"]


@pytest.mark.parametrize(
    ("name", "readme"),
    [
        ("featbit_experiments", "README.md"),
        ("featbit_experiments_starlette", "adapters/starlette/README.md"),
        ("featbit_experiments_langchain", "adapters/langchain/README.md"),
    ],
)
def test_each_long_description_is_its_own_readme_with_absolute_links(
    built: Built, name: str, readme: str
) -> None:
    description = metadata(built.wheel(name))["Description"][0]
    own = (REPOSITORY / readme).read_text(encoding="utf-8")
    assert description.strip() == own.strip()
    assert "](../" not in description and "](adapters/" not in description


@pytest.mark.parametrize("name", ["featbit_experiments_starlette", "featbit_experiments_langchain"])
def test_adapters_require_a_core_of_the_same_minor_version(built: Built, name: str) -> None:
    requires = metadata(built.wheel(name))["Requires-Dist"]
    assert "featbit-experiments<0.2,>=0.1" in requires


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_each_sdist_holds_only_its_own_package(built: Built, name: str) -> None:
    with tarfile.open(built.sdist(name)) as archive:
        members = [m.split("/", 1)[1] for m in archive.getnames() if "/" in m]
    packages = {m.split("/")[1] for m in members if m.startswith("src/")}
    assert packages == {DISTRIBUTIONS[name]}
    assert not [
        m
        for m in members
        if m.startswith(("tests/", "adapters/", "examples/", "benchmarks/", "docs/"))
        or m == "uv.lock"
    ]
    assert {"README.md", "LICENSE", "pyproject.toml"} <= set(members)


def test_a_small_app_runs_against_the_installed_wheels(installed: Path, built: Built) -> None:
    app = built.work / "app" / "app.py"
    app.parent.mkdir()
    shutil.copy(APP, app)
    result = json.loads(run(installed, app, cwd=app.parent))
    assert Path(result["core"]).is_relative_to(installed.parent.parent)
    answers = result["answers"]
    assert all(len(got) == 1 for got in answers.values())  # one branch per conversation
    assert {answer.split(":")[0] for [answer] in answers.values()} == {"control", "profile b"}
    assert result["exposed_units"] == sorted(answers) and len(result["variants"]) == 2


def test_the_console_script_is_installed(installed: Path) -> None:
    script = installed.parent / "featbit-experiments"
    assert "lifecycle" in run(script, "--help", cwd=installed.parent)
