"""Generate ``docs/hooks.md`` from the contracts (``contracts.py``) and the hook specifications,
so that the reference cannot drift from what the registry checks.

    python -m tinysnn_core.hookdoc > docs/hooks.md
    python -m tinysnn_core.hookdoc --check docs/hooks.md     (exit 1 when it is stale)
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from . import contracts, hookspecs


def _paragraph(doc: str | None) -> str:
    """A docstring as one Markdown paragraph per blank-line-separated block."""
    blocks = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in b.splitlines()) for b in blocks)


def _member(contract: contracts.Contract, name: str, spec, required: bool) -> str:
    if isinstance(spec, property):
        fn = spec.fget
        returned = inspect.signature(fn).return_annotation
        where = ("class attribute" if name in contract.class_attributes or name == "Params"
                 else "attribute")
        head = f"`{name}: {returned}` ({where})"
    else:
        fn = spec
        shown = "cls" if name == "__init__" else ("fn" if name == "__call__" else name)
        head = f"`{shown}{contracts.signature_text(fn)}`"
        if name == "__init__":
            head += " (constructor)"
    status = "required" if required else "optional"
    if name in contract.one_of:
        status = f"one of {', '.join(f'`{m}`' for m in contract.one_of)} required"
    # continuation paragraphs indented, so that they stay in the list item
    return f"- {head}, *{status}*. " + _paragraph(fn.__doc__).replace("\n\n", "\n\n  ")


def render() -> str:
    lines = ["# Hook reference", "",
             "Generated from `tinysnn_core/contracts.py` and `tinysnn_core/hookspecs.py` by "
             "`python -m tinysnn_core.hookdoc`; a test checks that this file matches.", "",
             inspect.cleandoc(hookspecs.__doc__ or ""), "",
             "| kind | hook | register | contract |", "|---|---|---|---|"]
    for kind, hook in hookspecs.KINDS:
        c = contracts.CONTRACTS[kind]
        lines.append(f"| `{kind}` | `{hook}` | {c.form} | `contracts.{c.protocol.__name__}` |")
    checks = inspect.cleandoc(contracts.__doc__ or "").split("\n", 1)[1]
    lines += ["", "## What the registry checks", "", _paragraph(checks), ""]
    for kind, hook in hookspecs.KINDS:
        c = contracts.CONTRACTS[kind]
        lines += [f"## `{kind}`: `{hook}(register)`", "",
                  f"Register {c.form}. Contract: `tinysnn_core.contracts.{c.protocol.__name__}`.",
                  "", _paragraph(c.protocol.__doc__), ""]
        lines += [_member(c, name, spec, required) for name, spec, required in c.members()]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--check"] and len(argv) == 2:
        if Path(argv[1]).read_text() != render():
            print(f"{argv[1]} is stale: python -m tinysnn_core.hookdoc > {argv[1]}",
                  file=sys.stderr)
            return 1
        return 0
    if argv:
        print("usage: python -m tinysnn_core.hookdoc [--check FILE]", file=sys.stderr)
        return 2
    print(render(), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
