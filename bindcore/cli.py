"""The ``bindcore`` command line. Sub-commands live in ``bindcore.commands.*`` and in plugins."""

from __future__ import annotations

import importlib
import pkgutil

import click

import bindcore.commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bindcore")
def cli() -> None:
    """bindcore: bind any number of modalities into one embedding space."""


def _add_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(bindcore.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"bindcore.commands.{module_info.name}")
        module.register(cli)
    from bindcore.plugins import get_registry

    registry = get_registry()
    registry.plugins()  # load entry points so their register_commands hooks are seen
    registry.pm.hook.register_commands(cli=cli)


_add_commands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
