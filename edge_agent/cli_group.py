"""The click group every `citygate-agent` (sub)command list uses: a typo gets the nearest command."""

from __future__ import annotations

import difflib

import click


def nearest(name: str, choices: list[str]) -> str | None:
    """The command a person most likely meant: the one it begins, else the closest spelling."""
    starting = [c for c in choices if c.startswith(name)]
    if len(starting) == 1:
        return starting[0]
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None


class SuggestingGroup(click.Group):
    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            guess = nearest(name, self.list_commands(ctx))
            hint = f" Did you mean {guess!r}?" if guess else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)
