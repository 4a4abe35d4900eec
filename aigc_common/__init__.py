"""The leaf every package may use (engine, bot, aigc, plugins' tools): structured logging
setup (``logs``) and the optional TOML config file (``config_file``). Standard library only;
it imports nothing of ours (tests/engine/test_import_layers.py enforces it)."""
