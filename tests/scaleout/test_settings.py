"""The scale-out's settings: each bad value names its variable and rule; URLs (they may carry a
password) are never echoed; AIGC_SHARDS for the bot."""
from __future__ import annotations

import pytest

from aigc_common.config_file import ConfigError


def test_queue_and_database_urls_are_checked_and_never_echoed():
    from engine.config import load_engine_settings

    with pytest.raises(ConfigError) as e:
        load_engine_settings(queue_url="redis://:hunter2@h:6379/0")
    assert "AIGC_DATABASE_URL" in str(e.value) and "required with AIGC_QUEUE_URL" in str(e.value)
    assert "hunter2" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_engine_settings(queue_url="http://:hunter2@h/", database_url="postgresql://u:pw@h/db")
    assert "AIGC_QUEUE_URL: Value error, must be a redis://" in str(e.value) and "hunter2" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_engine_settings(queue_url="redis://h", database_url="mysql://u:hunter2@h/db")
    assert "AIGC_DATABASE_URL" in str(e.value) and "hunter2" not in str(e.value)
    s = load_engine_settings(queue_url="redis://:hunter2@h:6379/0", database_url="postgresql://u:pw@h/db")
    assert "hunter2" not in repr(s) and "pw@" not in repr(s)
    assert load_engine_settings().queue_url is None  # the default: one process, no Redis


@pytest.mark.parametrize("value, ids, count", [("0-3/16", [0, 1, 2, 3], 16), ("5/8", [5], 8), ("0-0/1", [0], 1)])
def test_shard_ranges(value, ids, count):
    from bot.config import load_bot_settings

    assert load_bot_settings(shards=value).shard_ids == (ids, count)


@pytest.mark.parametrize("value, rule", [("3-1/4", "FIRST <= LAST < COUNT"), ("0-4/4", "within 0-3"),
                                          ("x/2", "FIRST-LAST/COUNT"), ("1-2", "FIRST-LAST/COUNT"),
                                          ("0/0", "from 1 to")])
def test_bad_shard_ranges_name_the_rule(value, rule):
    from bot.config import load_bot_settings

    with pytest.raises(ConfigError) as e:
        load_bot_settings(shards=value)
    assert str(e.value).startswith("AIGC_SHARDS:") and rule in str(e.value)
