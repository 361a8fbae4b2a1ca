"""The templates in deploy/ filled in with one machine's values.

Real machines and the local cluster use the same files. Render one by hand with
    python -m twooter.cluster.render VALUES.json deploy/patroni/patroni.yml.j2 > config.yml
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jinja2

from ..config import shipped_folder

DEPLOY_FOLDER = shipped_folder("deploy")


def render(template: str, values: dict[str, Any]) -> str:
    """Fill `template` (a path under deploy/, e.g. "haproxy/haproxy.cfg.j2") with `values`.

    Raises jinja2.UndefinedError when a value the template uses is missing.
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(DEPLOY_FOLDER)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(template).render(**values)


def read_env_file(text: str) -> dict[str, str]:
    """`NAME=value` lines (systemd's EnvironmentFile, Debian's /etc/default) as a dict; # starts a comment."""
    variables = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = value.strip()
    return variables


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m twooter.cluster.render VALUES.json TEMPLATE", file=sys.stderr)
        return 2
    values_file, template = argv
    values = json.loads(Path(values_file).read_text(encoding="utf-8"))
    template_path = Path(template).resolve()
    try:
        relative = template_path.relative_to(DEPLOY_FOLDER.resolve())
    except ValueError:
        relative = Path(template)
    sys.stdout.write(render(relative.as_posix(), values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
