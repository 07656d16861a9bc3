"""The one parser of comma-separated option values: `--seeds 0,1,2`, `--frames 1,3,5-7`,
`--shots exact,1000`, `--rename validation=test`. Messages name the option and echo at most 80
characters of what was given."""

from __future__ import annotations

from lqer.errors import LqerError
from lqer.guarded_yaml import shown

MAX_NUMBERS = 100_000  # frames of a cine run, window sides, seeds: far fewer


def items(text: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [part for part in (p.strip() for p in (text or "").split(",")) if part]


def numbers(
    text: str | None, option: str, kind: type = int, words: dict | None = None
) -> list | None:
    """'1,3,5-7' -> [1, 3, 5, 6, 7] (ranges for integers only); `words` maps words such as
    'exact' to values. None stays None (the option was not given)."""
    if text is None:
        return None
    words, values = words or {}, []
    try:
        for part in items(text):
            if part.lower() in words:
                values.append(words[part.lower()])
                continue
            first, dash, last = part.partition("-") if kind is int else (part, "", "")
            part_values = range(int(first), int(last) + 1) if dash else [kind(first)]
            if len(values) + len(part_values) > MAX_NUMBERS:  # 1-10000000000 fills the memory
                raise LqerError(f"{option}: more than {MAX_NUMBERS:,} numbers in {shown(text)}")
            values += part_values
    except ValueError:
        raise LqerError(f"{option}: expected numbers like 1,3,5-7, got {shown(text)}") from None
    if not values:
        raise LqerError(f"{option}: no numbers in {shown(text)}")
    return values


def pairs(text: str | None, option: str) -> dict[str, str]:
    """'a=b,c=d' -> {'a': 'b', 'c': 'd'}."""
    return dict(pair(part, option, "old=new pairs", text) for part in items(text))


def pair(part: str, option: str, form: str = "NAME=VALUE", given: str | None = None) -> tuple:
    """'a=b' -> ('a', 'b'); both sides must be there. `given`: the whole value, for the
    message, where `part` is one of several."""
    name, sep, value = (side.strip() for side in part.partition("="))
    if not sep or not name or not value:
        raise LqerError(f"{option}: expected {form}, got {shown(part if given is None else given)}")
    return name, value
