"""The ``bindcore`` command line. Sub-commands live in ``bindcore.commands.*`` and in plugins.

Start-up cost is what a command needs, nothing more. Importing every command and plugin up front made each
call, ``--version`` included, pay for torch and timm (the plugins import them). So:

- Built-in commands are found by module name, without importing anything: ``bindcore.commands.cache_anchor``
  defines ``cache-anchor`` (module name, ``_`` → ``-``). A module is imported, and its ``register(cli)`` run,
  only when its command is invoked or ``--help`` needs its one-line description. Command modules keep heavy
  imports (torch, numpy, open_clip, timm, safetensors, pydantic models) inside their functions, so this is cheap.
- Plugin commands (the ``register_commands`` hook) need every plugin imported, which costs seconds. They are
  loaded only when the invoked name is not a built-in command (see :meth:`Registry.plugin_commands`), and by
  ``bindcore plugins``, which imports the plugins anyway and lists each plugin's commands and failures.
- ``bindcore --help`` lists the built-in commands and says where the plugin commands are listed, rather than
  importing every plugin to list them. Entry-point metadata could name the installed plugins cheaply, but not
  their commands (most plugins add none), so naming them would mislead; ``bindcore plugins`` is exact.
"""

from __future__ import annotations

import pkgutil
import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from bindcore.plugins import Registry

BUILTIN_PACKAGE = "bindcore.commands"

PLUGIN_COMMANDS_NOTE = ("Plugins can add commands. They are not listed here, since listing them would import every "
                        "plugin; `bindcore plugins` lists them.")


def builtin_command_modules() -> dict[str, str]:
    """Built-in command name → the ``bindcore.commands`` module that defines it, found without importing them."""
    package = import_module(BUILTIN_PACKAGE)
    return {info.name.replace("_", "-"): f"{BUILTIN_PACKAGE}.{info.name}"
            for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")}


class BindcoreGroup(click.Group):
    """A click group that imports a built-in command's module on first use and plugins only when needed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._builtin_modules: dict[str, str] | None = None

    def builtin_modules(self) -> dict[str, str]:
        if self._builtin_modules is None:
            self._builtin_modules = builtin_command_modules()
        return self._builtin_modules

    def _registry(self) -> Registry:
        from bindcore.plugins import get_registry

        return get_registry()

    def plugin_commands(self) -> dict[str, click.Command]:
        """Commands plugins add (imports every plugin on first call; failures are recorded per plugin)."""
        return self._registry().plugin_commands(reserved=self.builtin_modules())

    def list_commands(self, ctx: click.Context) -> list[str]:
        # plugin commands only once something collected them: listing must not import plugins
        plugins_module = sys.modules.get("bindcore.plugins")  # not imported yet: nothing collected
        collected = plugins_module.get_registry().plugin_commands(load=False) if plugins_module else {}
        return sorted({*self.builtin_modules(), *self.commands, *collected})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = self.builtin_modules().get(cmd_name)
        if module_name is None:
            added = self.commands.get(cmd_name)  # added with add_command, e.g. by an embedding application
            return added if added is not None else self.plugin_commands().get(cmd_name)
        if cmd_name not in self.commands:
            import_module(module_name).register(self)
            if cmd_name not in self.commands:
                raise RuntimeError(f"{module_name}.register() did not add the command {cmd_name!r}: a module in "
                                   f"{BUILTIN_PACKAGE} must define the command named after it")
        return self.commands[cmd_name]

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            # an unknown command may be one a broken plugin failed to add: say which plugins failed
            if args and self.get_command(ctx, args[0]) is None:
                broken = [p.name for p in self._registry().plugins() if p.error]
                if broken:
                    error.message += (f" Plugins that failed to load: {', '.join(broken)} "
                                      f"(`bindcore plugins` says why).")
            raise


@click.group(cls=BindcoreGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=PLUGIN_COMMANDS_NOTE)
@click.version_option(package_name="bindcore")
def cli() -> None:
    """bindcore: bind any number of modalities into one embedding space."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
