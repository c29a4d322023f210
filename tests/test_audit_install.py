"""The audit is an extra: importing featbit_experiments (or its console script) does not
import DuckDB, and without DuckDB the audit says how to install it, in one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.event_logs import conversation_log

ROOT = Path(__file__).resolve().parents[1]


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_importing_the_library_and_its_cli_does_not_import_duckdb() -> None:
    result = python(
        "import sys, featbit_experiments, featbit_experiments.cli, featbit_experiments.audit\n"
        "print('duckdb' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_without_duckdb_the_audit_says_how_to_install_it(tmp_path: Path) -> None:
    path = conversation_log().write(tmp_path / "events.jsonl")
    result = python(
        "import sys\n"
        "sys.modules['duckdb'] = None  # as if the audit extra were not installed\n"
        "from featbit_experiments.cli import main\n"
        f"sys.exit(main(['audit', {str(path)!r}]))"
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "featbit-experiments audit: error: the audit needs DuckDB, which is not installed: "
        "pip install 'featbit-experiments[audit]'"
    ]
