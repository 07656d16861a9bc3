"""The documentation site builds without a warning, and the tutorial notebook runs from top to
bottom, as CI runs both."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import REPO
from nbclient import NotebookClient

from lqer.config import ExperimentConfig
from lqer.detection_config import DetectionConfig
from lqer.sections import flat


def test_the_site_builds_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    command = [str(mkdocs)] if mkdocs.exists() else [sys.executable, "-m", "mkdocs"]
    done = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    guide = (tmp_path / "site" / "guide" / "index.html").read_text()
    for command in ("lqer train", "lqer scan", "lqer data make-patches", "lqer detector train"):
        assert f"Usage: {command}" in guide, command
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "lqer.api.predict" in api and "lqer.api.noise_sweep" in api
    settings = (tmp_path / "site" / "configuration" / "index.html").read_text()
    for config in (ExperimentConfig(), DetectionConfig()):
        for key in flat(config.to_dict()):
            assert f"<code>{key}</code>" in settings, key
    assert "sites-clahe" in settings and "class weights in the loss" in settings


@pytest.mark.slow
def test_the_tutorial_notebook_runs(tmp_path):
    notebook = tmp_path / "tutorial.ipynb"
    shutil.copy(REPO / "docs" / "tutorial.ipynb", notebook)
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "classifier threshold" in outputs and "candidates above the threshold" in outputs
    assert "{'lqer': " in outputs and "'resnet18': " in outputs


def test_the_readme_lists_every_command_and_tells_the_truth_about_them():
    import re

    import typer.main

    from lqer.cli import _register, app

    _register()
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Commands") : readme.index("## Results")]
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        for full in [f"{name} {sub}" for sub in subcommands] if subcommands else [name]:
            data_row = next(line for line in table.splitlines() if "`lqer data " in line)
            said = f"`lqer {full}" in table or (
                full.startswith("data ") and full.split()[1] in re.findall(r"[\w-]+", data_row)
            )
            assert said, f"lqer {full} is missing from the README's command table"
    assert (REPO / "configs" / "padsd-cpu.yaml").exists() and "-c configs/padsd-cpu.yaml" in readme
