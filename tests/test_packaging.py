"""A regular (non-editable) install finds its config tree, search spaces and weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_install_runs_from_another_directory(tmp_path: Path) -> None:
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)], check=True, capture_output=True)
    (wheel,) = wheels.glob("gansweep-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, capture_output=True)

    # The installed copy comes first on the path, so the checkout is not what runs.
    env = dict(os.environ, PYTHONPATH=str(target))
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "gansweep", *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    where = subprocess.run([sys.executable, "-c", "import gansweep; print(gansweep.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(target))

    composed = run("train", "--cfg", "job", "model=mlp", "data=grid25")
    assert composed.returncode == 0, composed.stderr
    assert "name: grid25" in composed.stdout and "spacing: 2.0" in composed.stdout

    trained = run("train", "model=mlp", "data=ring8", "steps=10", "model.hidden=16", "eval.mixture_samples=100")
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.strip().splitlines()[-1].startswith("run folder: ")

    swept = run("sweep", "--trials", "1", "--space", "sweeps/mlp_grid25.yaml", "--dir", "sw", "steps=10", "eval.mixture_samples=100")
    assert swept.returncode == 0, swept.stderr
    assert (elsewhere / "sw" / "mlp_grid25-mlp-grid25" / "trials.csv").exists()


# What each third-party import of the package is installed as.
DISTRIBUTIONS = {
    "PIL": "pillow", "yaml": "pyyaml", "hydra": "hydra-core", "pytorch_fid": "pytorch-fid",
}


def test_every_third_party_import_is_declared_in_pyproject() -> None:
    import ast
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
                for r in project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]}
    imported: set[str] = set()
    for path in (REPO / "gansweep").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name not in ("gansweep", "__future__")}
    missing = sorted(name for name in third_party if DISTRIBUTIONS.get(name, name).lower() not in declared)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
