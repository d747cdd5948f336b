"""A command line generated from a frozen dataclass config.

Every field becomes `--field-name` (a field without a default: a positional argument); the string
literal right under a field (its "docstring") is the `--help` text. We use argparse rather than tyro
because bad input must produce one clear line on stderr and a non-zero exit, and argparse lets us
control that line exactly.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
import typing
from typing import Any, Callable, Sequence, TypeVar

from common.errors import RunFailure, UsageError

__all__ = ["UsageError", "field_docs", "parse_overrides", "run_cli"]  # UsageError: common/envs.py imports it here

C = TypeVar("C")


def field_docs(cls: type) -> dict[str, str]:
    """Maps each field of a dataclass to the string literal written right below it."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _converter(annotation: Any) -> tuple[Callable[[str], Any], Sequence[str] | None]:
    """Returns (parse function, choices) for a field's type annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]), [str(c) for c in choices]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        parse, choices = _converter(inner[0])
        return (lambda s: None if s.lower() == "none" else parse(s)), choices
    if annotation is bool:
        return _parse_bool, None
    return annotation, None


def parse_overrides(cls: type, argv: Sequence[str] | None, prog: str, description: str) -> dict[str, Any]:
    """Parses argv into {field: value} for the fields the user gave explicitly (and only those)."""
    parser = _Parser(prog=prog, description=description, argument_default=argparse.SUPPRESS,
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        parse, choices = _converter(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = docs.get(f.name, "") + (f" (default: {default})" if default not in (None, "") else "")
        flag = "--" + f.name.replace("_", "-")
        if f.default is dataclasses.MISSING:  # a field without a default is a positional argument
            parser.add_argument(f.name, type=parse, help=help_text, metavar=f.name.upper())
        elif hints[f.name] in (bool, typing.Optional[bool]):
            # `--flag` alone means true; `--flag false` is accepted too.
            parser.add_argument(flag, dest=f.name, type=parse, nargs="?", const=True, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=parse, choices=choices, help=help_text,
                                metavar=None if choices else f.name.upper())
    return vars(parser.parse_args(argv))


def run_cli(main: Callable[[C], Any], make_config: Callable[[dict[str, Any]], C], cls: type,
            argv: Sequence[str] | None = None, prog: str = "") -> int:
    """Parses argv, builds the config and runs main; bad input becomes one line on stderr (exit 2), and
    so does a failed write to disk during the run (exit 1)."""
    name = prog or "asyncrl"
    try:
        overrides = parse_overrides(cls, argv, prog, (cls.__doc__ or "").strip())
        cfg = make_config(overrides)  # __post_init__ validation raises ValueError
    except (UsageError, ValueError) as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2
    try:
        summary = main(cfg)
    except UsageError as err:  # bad env id, unusable checkpoint, ...: found once the run starts
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2
    except (OSError, RunFailure) as err:  # a disk that fills up while the run writes, a hung Ray shard
        print(f"{name}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the owner loop (which handles its own) began
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    return 130 if getattr(summary, "stop_reason", "") == "interrupted" else 0
