#!/usr/bin/env bash
# Set up (idempotent) and run the product: the engine and the bot. With no DISCORD_TOKEN the bot
# talks to the local Discord emulator, whose playground page it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/aigc up "$@"
