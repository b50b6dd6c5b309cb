"""``bindcore plugins``: which plugins loaded, what they provide, and what failed."""

from __future__ import annotations

import json

import click


def register(cli: click.Group) -> None:
    @cli.command("plugins")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
    def plugins_command(as_json: bool) -> None:
        """List installed bindcore plugins, their modalities, commands and load errors."""
        from bindcore.cli import builtin_command_modules
        from bindcore.plugins import get_registry, plugin_table

        registry = get_registry()
        registry.plugin_commands(reserved=builtin_command_modules())  # run the command hooks: list their failures
        plugins = registry.plugins()
        if as_json:
            click.echo(json.dumps([p.as_dict() for p in plugins], indent=2))
        elif plugins:
            click.echo(plugin_table(plugins))
        else:
            click.echo("No bindcore plugins installed. Try: pip install bind-vision bind-text")
