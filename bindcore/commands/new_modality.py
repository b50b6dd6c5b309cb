"""``bindcore new-modality NAME [--kind map|signal] [--dir DIR]``: start a plugin for a new modality from
``plugin_template/``.

The template holds ``common/`` (files every plugin gets) and one folder per kind in :data:`KINDS` (the files
that differ: config, model, preprocessing, toy renderer, strategies, preprocessing tests). A plugin is the
union of ``common/`` and its kind's folder; a path in both is a template error. File names and contents may
hold ``{{key}}`` placeholders (keys in :func:`placeholders`). The plugin is rendered into a temporary
directory next to the target and renamed into place, so a failure never leaves a half-written plugin behind.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
from pathlib import Path

import click

from bindcore.errors import ConfigError
from bindcore.io import atomic_directory

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MAX_NAME_LENGTH = 40
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
SKIPPED = ("__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache")
#: The files every plugin gets, whatever its kind.
COMMON = "common"
#: Template kind → the core base class its model subclasses (shown in the rendered README).
KINDS: dict[str, str] = {
    "map": "bindcore.patch_modality.PatchModality",  # a 2-D map per item (tactile pad, radar range-Doppler, …)
    "signal": "bindcore.signal_modality.SignalModality",  # a (channels, time) signal per item (EEG, EMG, …)
}
DEFAULT_KIND = "map"


def default_template_dir() -> Path:
    """The template shipped inside the package (``bindcore/plugin_template``, in a checkout a link to
    ``plugin_template/template``), so ``new-modality`` works from a wheel as well as from a clone."""
    return Path(__file__).resolve().parents[1] / "plugin_template"


def validate_name(name: str) -> str:
    """A modality name usable as entry-point name, distribution suffix and Python package suffix."""
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"invalid modality name {name!r}: use lowercase letters, digits and single underscores, "
                          f"starting with a letter, at most {MAX_NAME_LENGTH} characters (e.g. 'tactile', "
                          f"'event_camera')")
    if keyword.iskeyword(name) or name.startswith("bind"):
        raise ConfigError(f"invalid modality name {name!r}: choose the bare modality name (the plugin becomes "
                          f"bind-<name> / bind_<name>)")
    return name


def validate_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown template kind {kind!r}: choose one of {', '.join(KINDS)}")
    return kind


def placeholders(name: str, kind: str = DEFAULT_KIND) -> dict[str, str]:
    """The values substituted for ``{{key}}`` in the template, for modality ``name`` of template ``kind``."""
    import bindcore

    major_minor = ".".join(bindcore.__version__.split(".")[:2])
    return {
        "name": name,
        "Name": "".join(part.capitalize() for part in name.split("_")),
        "package": f"bind_{name}",
        "distribution": "bind-" + name.replace("_", "-"),
        "bindcore_version": major_minor,
        "kind": kind,
        "base_class": KINDS[validate_kind(kind)],
    }


def render_text(text: str, values: dict[str, str], where: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(f"{where}: unknown template placeholder {{{{{key}}}}} (known: {', '.join(values)})")
        return values[key]

    return PLACEHOLDER.sub(substitute, text)


def render_template(name: str, directory: str | os.PathLike[str] = ".", *, kind: str = DEFAULT_KIND,
                    template: str | os.PathLike[str] | None = None) -> Path:
    """Render the plugin template of ``kind`` for modality ``name`` into ``directory/bind-<name>`` and return
    that path.

    Raises :class:`bindcore.ConfigError` for a bad name or kind, a missing template or an existing target; on
    any error nothing is left behind.
    """
    validate_name(name)
    validate_kind(kind)
    source = Path(template) if template is not None else default_template_dir()
    layers = [source / COMMON, source / kind]
    for layer in layers:
        if not layer.is_dir():
            raise ConfigError(f"plugin template folder {layer} not found: pass --template pointing at "
                              f"plugin_template/template of a bindcore checkout (it holds {COMMON}/ and "
                              f"{'/, '.join(KINDS)}/)")
    values = placeholders(name, kind)
    parent = Path(directory)
    target = parent / values["distribution"]
    if target.exists() or target.is_symlink():
        raise ConfigError(f"{target} already exists: choose another --dir or remove it first")
    plan = _plan(source, layers, values)  # bad file names are refused before anything is written
    with atomic_directory(target) as staging:  # fails if the target appeared meanwhile
        for path, rendered in plan:
            out = staging / rendered
            if path.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:  # binary assets are copied as they are
                shutil.copyfile(path, out)
            else:
                out.write_text(render_text(text, values, str(path.relative_to(source))), encoding="utf-8")
            shutil.copymode(path, out)
    return target


def _plan(source: Path, layers: list[Path], values: dict[str, str]) -> list[tuple[Path, Path]]:
    """``(template path, rendered path relative to the plugin)`` of every folder and file, layer by layer.

    A file of two layers rendering to one path is refused: neither may silently shadow the other.
    """
    plan: list[tuple[Path, Path]] = []
    files: dict[Path, Path] = {}
    for layer in layers:
        for path in sorted(layer.rglob("*")):
            relative = path.relative_to(layer)
            if any(part in SKIPPED for part in relative.parts) or path.suffix == ".pyc":
                continue
            where = path.relative_to(source)
            rendered = Path(render_text(str(relative), values, str(where)))
            if rendered.is_absolute() or ".." in rendered.parts:  # validated values hold no separators
                raise ConfigError(f"{where}: renders to {rendered}, outside the plugin")
            if not path.is_dir():
                if rendered in files:
                    raise ConfigError(f"template files {files[rendered]} and {where} both render to {rendered}: "
                                      f"keep it in {COMMON}/ or in the kind folders, not both")
                files[rendered] = where
            plan.append((path, rendered))
    return plan


def _warn_if_taken(name: str) -> None:
    """Installing a second plugin for an installed modality makes the name ambiguous: say so up front."""
    from bindcore.plugins import get_registry

    registry = get_registry()
    if name in registry.names():
        click.echo(f"Warning: modality {name!r} is already provided by {registry.provider(name)}; installing both "
                   f"makes {name!r} ambiguous (bindcore refuses duplicate names)", err=True)


def register(cli: click.Group) -> None:
    @cli.command("new-modality")
    @click.argument("name")
    @click.option("--kind", type=click.Choice(list(KINDS)), default=DEFAULT_KIND, show_default=True,
                  help="map: one 2-D map per item (PatchModality); signal: one (channels, time) signal per item "
                       "(SignalModality).")
    @click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                  show_default=True, help="Where to create bind-NAME/.")
    @click.option("--template", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Template directory holding common/ and one folder per kind (default: the template "
                       "shipped with bindcore, plugin_template/template).")
    def new_modality_command(name: str, kind: str, directory: Path, template: Path | None) -> None:
        """Create bind-NAME/, an installable plugin for modality NAME whose tests pass from the start."""
        try:
            target = render_template(name, directory, kind=kind, template=template)
        except (ConfigError, OSError) as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Created {target}")
        _warn_if_taken(name)
        click.echo("Next steps:")
        click.echo(f"  pip install -e {target}")
        click.echo(f"  pytest {target}")
        click.echo(f"  bindcore plugins   # lists {name!r}")
        click.echo(f"Then follow {target / 'README.md'} to make it your own.")
