"""Plugin discovery and the catalog.

Plugins are the entry points of the group ``aigc.plugins``, built-in ones included
(``engine.discovery`` finds them). A plugin that fails to import, declare or load is
recorded with its reason (catalog ``failed`` and the log); the others are still served.
"""
from __future__ import annotations

import hashlib
import json
import logging
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import ValidationError

from engine.artifacts import BUILTIN_MODALITIES
from engine.discovery import BUILTIN, Candidate, discover, resolve
from engine.protocol import Catalog, CommandSpec, FailedPlugin, PluginSpec
from engine.sdk import Command, Generator, Modality, Plugin

log = logging.getLogger("aigc.engine.registry")


@dataclass
class LoadedPlugin:
    plugin: Plugin
    source: str
    commands: list[CommandSpec]


@dataclass
class Registry:
    plugins: dict[str, LoadedPlugin] = field(default_factory=dict)
    failed: list[FailedPlugin] = field(default_factory=list)
    modalities: dict[str, Modality] = field(default_factory=dict)
    generators: dict[str, Generator] = field(default_factory=dict)
    commands: dict[str, CommandSpec] = field(default_factory=dict)
    # a command's cross-option rules (sdk.Command.check), run by admission before queueing
    checks: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    _catalog: Catalog | None = None

    def command(self, name: str) -> CommandSpec | None:
        return self.commands.get(name)

    def plugin_of(self, command: str) -> Plugin:
        return self.plugins[self.commands[command].plugin].plugin

    def catalog(self) -> Catalog:
        if self._catalog is None:
            plugins = [PluginSpec(name=lp.plugin.name, version=lp.plugin.version,
                                  description=lp.plugin.description, source=lp.source,
                                  commands=lp.commands,
                                  modalities=[m.spec() for m in lp.plugin.modalities])
                       for lp in sorted(self.plugins.values(), key=lambda p: p.plugin.name)]
            body = Catalog(plugins=plugins, failed=self.failed,
                           modalities=[m.spec() for m in self.modalities.values()])
            digest = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True)
                                    .encode()).hexdigest()[:16]
            self._catalog = body.model_copy(update={"hash": digest})
        return self._catalog

    # ---- building -----------------------------------------------------------------

    def fail(self, name: str, source: str, reason: str) -> None:
        log.error("plugin failed", extra={"plugin": name, "source": source, "reason": reason})
        self.failed.append(FailedPlugin(name=name, source=source, reason=reason))
        self._catalog = None

    def add(self, plugin: Plugin, source: str) -> None:
        """Validate a plugin's declarations and register it (all or nothing)."""
        if not isinstance(plugin, Plugin):
            raise TypeError(f"expected engine.sdk.Plugin, got {type(plugin).__name__}")
        if plugin.name in self.plugins:
            raise ValueError(f"a plugin named {plugin.name!r} is already loaded")
        own_modalities = {m.name: m for m in plugin.modalities}
        for name in own_modalities:
            if name in self.modalities:
                raise ValueError(f"modality {name!r} is already registered")
        gens = {g.name: g for g in plugin.generators}
        for g in plugin.generators:
            if not g.name or g.name in self.generators:
                raise ValueError(f"generator name {g.name!r} is empty or already used")
            if g.max_batch_size < 1:
                raise ValueError(f"generator {g.name!r}: max_batch_size must be ≥ 1")
        specs = []
        for c in plugin.commands:
            if c.name in self.commands:
                raise ValueError(f"command /{c.name} is already provided by another plugin")
            if c.modality not in own_modalities and c.modality not in self.modalities:
                raise ValueError(f"command /{c.name}: unknown modality {c.modality!r}")
            if c.generator not in gens:
                raise ValueError(f"command /{c.name}: unknown generator {c.generator!r}")
            for o in c.options:
                if o.autocomplete and o.autocomplete not in plugin.autocomplete:
                    raise ValueError(f"command /{c.name} option {o.name}: unknown autocomplete "
                                     f"source {o.autocomplete!r}")
            specs.append(_command_spec(c, plugin.name))
        self.modalities.update(own_modalities)
        self.generators.update(gens)
        self.commands.update({s.name: s for s in specs})
        self.checks.update({c.name: c.check for c in plugin.commands if c.check is not None})
        self.plugins[plugin.name] = LoadedPlugin(plugin, source, specs)
        self._catalog = None

    def close(self, plugin: str | None = None) -> None:
        """Stop the child processes of one plugin's generators (or of all)."""
        names = [g.name for g in self.plugins[plugin].plugin.generators] if plugin else list(self.generators)
        for n in names:
            close = getattr(self.generators.get(n), "close", None)
            if close is not None:
                close()

    def remove(self, name: str) -> None:
        lp = self.plugins.pop(name)
        for c in lp.commands:
            self.commands.pop(c.name, None)
            self.checks.pop(c.name, None)
        for g in lp.plugin.generators:
            self.generators.pop(g.name, None)
        for m in lp.plugin.modalities:
            self.modalities.pop(m.name, None)
        self._catalog = None


def _en_us(l10n: dict[str, str], text: str) -> dict[str, str]:
    """The catalog always carries en-US next to the plugin's own locales."""
    return {"en-US": text, **l10n}


def _command_spec(c: Command, plugin: str) -> CommandSpec:
    try:
        options = [o.model_copy(update={
            "name_localizations": _en_us(o.name_localizations, o.name),
            "description_localizations": _en_us(o.description_localizations, o.description)})
            for o in c.options]
        return CommandSpec(name=c.name, description=c.description, plugin=plugin,
                           modality=c.modality, generator=c.generator, options=options,
                           actions=c.actions, max_count=c.max_count, nsfw=c.nsfw,
                           name_localizations=_en_us(c.name_localizations, c.name),
                           description_localizations=_en_us(c.description_localizations,
                                                            c.description))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"command /{c.name}: {where}: {first['msg']}") from None


def _error_text(e: BaseException) -> str:
    frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(e).__name__}: {e}{where}"


def build_registry(device: str, *, enabled: list[str] | None = None,
                   disabled: list[str] | None = None, builtin: bool = True,
                   extra: list[Plugin] | None = None, processes: bool = False,
                   threads: int = 0) -> Registry:
    """Discover, declare and load plugins. Never raises for a plugin's fault.

    ``processes``: run each generator of an importable plugin in a child process of its own
    (engine.generator_process), with ``threads`` torch threads there."""
    from engine.generator_process import can_isolate, isolate

    reg = Registry(modalities={m.name: m for m in BUILTIN_MODALITIES})
    candidates = discover() + [Candidate(p.name, "in-process", (lambda p=p: p)) for p in extra or []]
    for name, source, loader in ((c.name, c.source, c.load) for c in candidates):
        if source == BUILTIN and not builtin:
            continue
        if (enabled and name not in enabled) or (disabled and name in disabled):
            log.info("plugin disabled by config", extra={"plugin": name})
            continue
        try:
            plugin = resolve(loader())
            reg.add(plugin, source)
        except Exception as e:  # a broken plugin must not take the engine down
            reg.fail(name, source, f"could not be declared: {_error_text(e)}")
            continue
        try:
            for g in plugin.generators:
                if processes and can_isolate(source):
                    reg.generators[g.name] = isolate(g, name, source, device, threads)
                else:
                    g.load(device)
        except Exception as e:
            reg.close(plugin.name)
            reg.remove(plugin.name)
            reg.fail(name, source, f"could not load: {_error_text(e)}")
    return reg
