"""MkDocs hooks: pages generated from the repository at build time, so they cannot drift from it.

* ``<!-- cli-help -->`` in a page becomes the ``--help`` text of ``jaxopt-lab`` and of each of its
  commands, as the installed code prints it.
* ``<!-- reproductions -->`` becomes the list of reproductions, read with ``ast`` from the reproduction
  config files (their docstring command, ``TITLE``, ``DESCRIPTION`` and ``CLAIMS``), nothing imported.

A failure here (the CLI does not start, no reproduction found) fails the build.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import subprocess
import sys

_CLI = "import sys; from jaxopt_lab.lab.cli import main; sys.exit(main(sys.argv[1:]))"


def _root(config) -> pathlib.Path:
    return pathlib.Path(config["config_file_path"]).resolve().parent


def _help(root: pathlib.Path, *args: str) -> str:
    env = dict(os.environ, COLUMNS="100", PYTHONPATH=os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.run([sys.executable, "-c", _CLI, *args, "--help"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"jaxopt-lab {' '.join(args)} --help failed:\n{proc.stderr}")
    return proc.stdout.rstrip()


def _commands(top_help: str) -> list[str]:
    """Sub-command names from the top-level help (argparse lists them indented under COMMAND)."""
    names, in_list = [], False
    for line in top_help.splitlines():
        if re.match(r"^\s{2}COMMAND\b", line) or line.strip().startswith("{"):
            in_list = True
            continue
        if in_list:
            match = re.match(r"^\s{4}([a-z][\w-]*)(\s|$)", line)
            if match:
                names.append(match.group(1))
            elif line and not line.startswith(" " * 6):
                in_list = False
    return names


def _cli_page(root: pathlib.Path) -> str:
    top = _help(root)
    commands = _commands(top)
    if not commands:
        raise RuntimeError("found no sub-commands in `jaxopt-lab --help`")
    parts = ["## `jaxopt-lab`", "", "```text", top, "```", ""]
    for command in commands:
        parts += [f"## `jaxopt-lab {command}`", "", "```text", _help(root, command), "```", ""]
    return "\n".join(parts)


def _literal(node: ast.AST, constants: dict):
    """The value of a literal (or of a module-level constant it names); else its source text."""
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def _reproduction_files(root: pathlib.Path) -> dict[str, pathlib.Path]:
    dirs = [root / "configs" / "reproduce", *sorted(root.glob("jaxopt_lab/**/configs/reproduce"))]
    files: dict[str, pathlib.Path] = {}
    for directory in dirs:
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                files.setdefault(path.stem.replace("_", "-"), path)
    return files


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _reproduction(figure_id: str, path: pathlib.Path) -> str:
    tree = ast.parse(path.read_text())
    doc = (ast.get_docstring(tree) or "").strip()
    command, _, summary = doc.partition("\n")
    values, claims, constants = {}, [], {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "CLAIMS" and isinstance(node.value, (ast.List, ast.Tuple)):
                for call in node.value.elts:
                    if isinstance(call, ast.Call):
                        args = [_literal(a, constants) for a in call.args]
                        kwargs = {k.arg: _literal(k.value, constants) for k in call.keywords}
                        fields = ["name", "quote", "key", "op", "bound"]
                        claim = dict(zip(fields, args), **kwargs)
                        claims.append(claim)
            else:
                try:
                    constants[name] = ast.literal_eval(node.value)
                except ValueError:
                    pass
                if name in ("TITLE", "DESCRIPTION"):
                    values[name] = _literal(node.value, constants)
    lines = [f"## `{figure_id}`", ""]
    if values.get("TITLE"):
        lines += [f"**{values['TITLE']}**", ""]
    lines += ["```bash", command or f"jaxopt-lab reproduce {figure_id}", "```", ""]
    if summary.strip():
        lines += [" ".join(summary.split()), ""]
    if values.get("DESCRIPTION"):
        lines += ['??? note "Setting, substitutions and known gaps"', "",
                  "    " + " ".join(str(values["DESCRIPTION"]).split()), ""]
    if claims:
        lines += ["| claim | check | what the paper says, and how it is read |", "|---|---|---|"]
        for claim in claims:
            bound = claim.get("bound")
            bound = f"`{bound}`" if isinstance(bound, str) else f"{bound:g}"
            check = f"`{claim.get('key')}` {claim.get('op')} {bound}"
            tolerances = [f"{k} {claim[k]}" for k in ("rtol", "atol", "margin") if claim.get(k)]
            if tolerances:
                check += " (" + ", ".join(tolerances) + ")"
            lines.append(f"| `{_cell(claim.get('name'))}` | {_cell(check)} | {_cell(claim.get('quote', ''))} |")
        lines.append("")
    return "\n".join(lines)


def _reproductions_page(root: pathlib.Path) -> str:
    files = _reproduction_files(root)
    if not files:
        raise RuntimeError(f"found no reproduction configs under {root}")
    return "\n".join(_reproduction(figure_id, path) for figure_id, path in files.items())


def on_page_markdown(markdown, page, config, files):
    if "<!-- cli-help -->" in markdown:
        markdown = markdown.replace("<!-- cli-help -->", _cli_page(_root(config)))
    if "<!-- reproductions -->" in markdown:
        markdown = markdown.replace("<!-- reproductions -->", _reproductions_page(_root(config)))
    return markdown
