"""YAML and values from outside, read and shown with bounded work.

PyYAML's `safe_load` is safe from code execution, not from size: a "billion laughs" file of a
few hundred bytes nests aliases that expand to gigabytes once anything walks or prints the
value, it keeps the last of two equal keys without a word, and a 5,000-digit integer raises
a ValueError. `safe_yaml` refuses all three as `yaml.YAMLError`s; `shown` prints any value in
at most 80 characters without expanding it.
"""

from __future__ import annotations

import reprlib
import sys
from typing import Any

import yaml

MAX_YAML_NODES = 10_000  # a configuration has about 60 values; aliases may not expand past this

_REPR = reprlib.Repr()  # bounded work: shared references must not expand to be shown
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 80, 80, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def shown(value: Any) -> str:
    """At most 80 characters of `value`'s repr, for messages."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int too long for Python to turn into text
        text = f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "?"
    return text if len(text) <= 80 else text[:77] + "..."


class YamlRefused(yaml.YAMLError):
    """YAML that parses but that lqer will not take: see `safe_yaml`."""


def first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0] if len(lines[0]) <= 120 else lines[0][:117] + "..."


def _where(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _check_nodes(root: yaml.Node) -> None:
    """Refuse a mapping that repeats a key (PyYAML would keep the last one silently), and
    aliases that expand to more than MAX_YAML_NODES values (a "billion laughs" file of a few
    hundred bytes expands to gigabytes). Each node is counted once, with memoisation."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            if sizes[id(node)] < 0:
                raise YamlRefused(f"an alias refers to itself ({_where(node)})")
            return sizes[id(node)]
        sizes[id(node)] = -1  # on the way: meeting it again below is a cycle
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in seen:
                        raise YamlRefused(
                            f"duplicate key {shown(key.value)} ({_where(key)}; "
                            f"first at {_where(seen[key.tag, key.value])})"
                        )
                    seen[key.tag, key.value] = key
                total += size(key) + size(value)
        if total > MAX_YAML_NODES:
            raise YamlRefused(
                f"more than {MAX_YAML_NODES:,} values once aliases expand ({_where(node)})"
            )
        sizes[id(node)] = total
        return total

    size(root)


def safe_yaml(text: str) -> Any:
    """`yaml.safe_load`, refusing what `_check_nodes` refuses and values Python cannot hold
    (an integer of thousands of digits, a date like 2024-13-45) as YAMLErrors."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_nodes(root)
        try:
            return loader.construct_document(root)
        except ValueError as e:
            what = first_line(e)
            if "integer string conversion" in what:
                what = f"an integer of more than {sys.get_int_max_str_digits()} digits"
            raise YamlRefused(f"a value Python cannot hold: {what}") from None
    finally:
        loader.dispose()
