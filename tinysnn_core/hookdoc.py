"""Generate ``docs/hooks.md`` from the hook specifications (so the reference cannot drift).

    python -m tinysnn_core.hookdoc > docs/hooks.md
"""

from __future__ import annotations

import inspect

from . import hookspecs


def render() -> str:
    lines = ["# Hook reference", "",
             "Generated from `tinysnn_core/hookspecs.py` by `python -m tinysnn_core.hookdoc`; "
             "a test checks that this file matches.", "",
             inspect.cleandoc(hookspecs.__doc__ or ""), "",
             "| kind | hook |", "|---|---|"]
    lines += [f"| `{kind}` | `{hook}` |" for kind, hook in hookspecs.KINDS]
    lines.append("")
    for kind, hook in hookspecs.KINDS:
        fn = getattr(hookspecs, hook)
        lines += [f"## `{hook}(register)`", "", f"Kind: `{kind}`.", "",
                  inspect.cleandoc(fn.__doc__ or ""), ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
