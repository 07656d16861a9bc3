"""Long steps say what they do: a tqdm bar on standard error once a step passes two seconds."""

import logging
import time

from helpers import run_lqer

from lqer import __version__
from lqer.logs import logger, progress


def slow(n: int, seconds: float):
    for i in range(n):
        time.sleep(seconds)
        yield i


def test_a_long_step_shows_a_bar_naming_what_it_does(capsys):
    assert list(progress(slow(3, 0.9), "reading images", total=3)) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "reading images" in err and "/3" in err


def test_a_quick_step_or_a_quieted_logger_shows_none(capsys):
    assert list(progress(range(5), "quick")) == list(range(5))
    logger.setLevel(logging.WARNING)
    try:
        list(progress(slow(3, 0.9), "quiet", total=3))
    finally:
        logger.setLevel(logging.INFO)
    assert capsys.readouterr().err == ""


def test_version():
    result = run_lqer("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"lqer {__version__}"
