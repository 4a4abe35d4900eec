"""Bot settings: environment variables over the ``[bot]`` table of the TOML file named by
AIGC_CONFIG. Every bad value stops start-up with one line naming the variable, the rule and
the value given (never for secrets). Secrets are SecretStr: repr and logs show **********.

    DISCORD_TOKEN            bot token; unset: run against the local Discord emulator
    AIGC_ENGINE_URL          engine base URL(s), comma-separated (failover in that order)
    AIGC_ENGINE_TOKEN        bearer token the engine expects
    AIGC_DATA_DIR            data directory (default ./data)
    AIGC_STORE_URL           SQLAlchemy URL (default: SQLite file in AIGC_DATA_DIR)
    AIGC_DISCORD_API_BASE    REST base (default https://discord.com/api/v10)
    AIGC_DISCORD_GATEWAY     gateway URL (default wss://gateway.discord.gg/)
    AIGC_TEST_GUILDS         guild ids to sync commands to at once, comma-separated
    AIGC_CATALOG_POLL_S      seconds between catalog checks (0: only on /aigc reload)
    AIGC_ENGINE_TIMEOUT_S    seconds one engine request may take
    AIGC_ENGINE_HEALTH_S     seconds between engine health probes
    AIGC_BOT_HTTP_HOST       address of the bot's /healthz and /metrics (default 127.0.0.1)
    AIGC_BOT_HTTP_PORT       their port (default 8701; 0: no HTTP server)
    AIGC_SHARDS              the gateway shards this process runs, FIRST-LAST/COUNT (e.g. 0-3/16);
                             unset: all of them (discord.py asks Discord for the count)
    AIGC_EMULATOR_HOST       address the local emulator binds with no token (default 127.0.0.1;
                             0.0.0.0 in the Docker image so the playground is reachable)
    AIGC_EMULATOR_PORT       its port (default 8765; --emulator-port overrides)
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

from aigc_common.config_file import ConfigError, load_toml_table

from bot.store.database import StoreConfigError, normalize_store_url

TOML_TABLE = "bot"
DEFAULT_ENGINE_URL = "http://127.0.0.1:8700"
DEFAULT_HTTP_PORT = 8701
STORE_FILE = "aigc-bot.sqlite3"


def _url_with_schemes(*schemes: str) -> Any:
    def check(value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)} and naming a host")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError("has an invalid port") from None
        return value
    return AfterValidator(check)


HttpUrlStr = Annotated[str, _url_with_schemes("http", "https")]
WsUrlStr = Annotated[str, _url_with_schemes("ws", "wss")]
GuildId = Annotated[int, Field(gt=0, lt=2**64)]


MAX_SHARDS = 65_536


def parse_shards(value: str) -> tuple[list[int], int]:
    """``FIRST-LAST/COUNT`` (or ``N/COUNT``) → (ids, count): several bot processes each run a
    range of the gateway's shards and share one store (PostgreSQL), so any of them serves any
    button (its custom_id names the job)."""
    text = value.strip()
    span, slash, count_text = text.partition("/")
    first, dash, last = span.partition("-")
    if not slash or not all(p.strip().isdigit() for p in (first, count_text, *( [last] if dash else []))):
        raise ValueError(f"must look like FIRST-LAST/COUNT, e.g. 0-3/16")
    lo, hi, count = int(first), int(last if dash else first), int(count_text)
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"the shard count must be from 1 to {MAX_SHARDS}")
    if not 0 <= lo <= hi < count:
        raise ValueError(f"shards {lo}-{hi} must lie within 0-{count - 1} (FIRST <= LAST < COUNT)")
    return list(range(lo, hi + 1)), count


def _env(name: str) -> Any:
    return Field(validation_alias=AliasChoices(name, name.lower()))


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", validate_default=True, populate_by_name=True)

    discord_token: SecretStr | None = Field(None, validation_alias=AliasChoices("DISCORD_TOKEN", "discord_token"))
    engine_url: Annotated[list[HttpUrlStr], NoDecode] = Field(
        default_factory=lambda: [DEFAULT_ENGINE_URL], min_length=1,
        validation_alias=AliasChoices("AIGC_ENGINE_URL", "engine_url"))
    engine_token: SecretStr | None = Field(None, validation_alias=AliasChoices("AIGC_ENGINE_TOKEN", "engine_token"))
    data_dir: Path = Field(Path("data"), validation_alias=AliasChoices("AIGC_DATA_DIR", "data_dir"))
    store_url: str | None = Field(None, validation_alias=AliasChoices("AIGC_STORE_URL", "store_url"))
    discord_api_base: HttpUrlStr = Field("https://discord.com/api/v10",
                                         validation_alias=AliasChoices("AIGC_DISCORD_API_BASE", "discord_api_base"))
    discord_gateway: WsUrlStr = Field("wss://gateway.discord.gg/",
                                      validation_alias=AliasChoices("AIGC_DISCORD_GATEWAY", "discord_gateway"))
    test_guilds: Annotated[list[GuildId], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("AIGC_TEST_GUILDS", "test_guilds"))
    catalog_poll_s: float = Field(60.0, ge=0, le=86_400,
                                  validation_alias=AliasChoices("AIGC_CATALOG_POLL_S", "catalog_poll_s"))
    engine_timeout_s: float = Field(30.0, gt=0, le=600,
                                    validation_alias=AliasChoices("AIGC_ENGINE_TIMEOUT_S", "engine_timeout_s"))
    engine_health_s: float = Field(10.0, ge=0, le=3600,
                                   validation_alias=AliasChoices("AIGC_ENGINE_HEALTH_S", "engine_health_s"))
    http_host: str = Field("127.0.0.1", min_length=1, validation_alias=AliasChoices("AIGC_BOT_HTTP_HOST", "http_host"))
    http_port: int = Field(DEFAULT_HTTP_PORT, ge=0, le=65535,
                           validation_alias=AliasChoices("AIGC_BOT_HTTP_PORT", "http_port"))
    emulator_host: str = Field("127.0.0.1", min_length=1,
                               validation_alias=AliasChoices("AIGC_EMULATOR_HOST", "emulator_host"))
    emulator_port: int = Field(8765, ge=0, le=65535,
                               validation_alias=AliasChoices("AIGC_EMULATOR_PORT", "emulator_port"))
    shards: str | None = Field(None, validation_alias=AliasChoices("AIGC_SHARDS", "shards"))

    @field_validator("shards")
    @classmethod
    def _shards(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_shards(value)
        return value.strip()

    @property
    def shard_ids(self) -> tuple[list[int], int] | None:
        """(this process's shard ids, the shard count), from AIGC_SHARDS."""
        return parse_shards(self.shards) if self.shards else None

    @field_validator("engine_url", "test_guilds", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        return value

    @field_validator("engine_url")
    @classmethod
    def _no_trailing_slash(cls, urls: list[str]) -> list[str]:
        return [u.rstrip("/") for u in urls]

    @field_validator("discord_api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return normalize_store_url(value.strip()).render_as_string(hide_password=False)
        except StoreConfigError as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="after")
    def _default_store(self) -> BotSettings:
        if self.store_url is None:
            self.store_url = f"sqlite+aiosqlite:///{(self.data_dir / STORE_FILE).as_posix()}"
        return self

    @property
    def uses_emulator(self) -> bool:
        """No Discord token: the bot talks to the local emulator."""
        return self.discord_token is None

    def redacted_store_url(self) -> str:
        return make_url(self.store_url or "").render_as_string(hide_password=True)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (self.redacted_store_url() if name == "store_url" and value else value)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _BotTomlTable(settings_cls)


class _BotTomlTable(PydanticBaseSettingsSource):
    """The ``[bot]`` table of $AIGC_CONFIG, keyed by field name (lowest priority)."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        self._data = load_toml_table(TOML_TABLE)
        unknown = sorted(set(self._data) - set(settings_cls.model_fields))
        if unknown:
            raise ConfigError(f"AIGC_CONFIG: [{TOML_TABLE}] has unknown keys {', '.join(unknown)}; "
                              f"known keys: {', '.join(settings_cls.model_fields)}")

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


_ENV_NAME = {name: next(a for a in info.validation_alias.choices if isinstance(a, str))  # type: ignore[union-attr]
             for name, info in BotSettings.model_fields.items()}
_SECRET_FIELDS = {name for name, info in BotSettings.model_fields.items() if "SecretStr" in str(info.annotation)}


def _without_password(value: Any) -> Any:
    """URLs may carry credentials (store URL, engine URL): never echo a password."""
    if isinstance(value, str) and "@" in value and "://" in value:
        scheme, _, rest = value.partition("://")
        userinfo, at, host = rest.rpartition("@")
        return f"{scheme}://{userinfo.partition(':')[0]}:***@{host}" if ":" in userinfo else value
    return value


def format_settings_errors(err: ValidationError) -> str:
    """One line per problem: ``AIGC_ENGINE_URL[1]: <rule> (got 'x')``; secrets are not echoed."""
    lines = []
    for e in err.errors():
        loc = list(e["loc"])
        head = str(loc[0]) if loc else ""
        field_name = next((n for n, env in _ENV_NAME.items() if head in (n, env, env.lower())), None)
        name = _ENV_NAME.get(field_name, head) if field_name else head or "settings"
        name += "".join(f"[{p}]" for p in loc[1:])
        rule = e["msg"].removeprefix("Value error, ")
        got = e.get("input")
        if field_name in _SECRET_FIELDS or e["type"] == "missing" or isinstance(got, dict):
            shown = ""
        else:
            shown = f" (got {_without_password(got)!r})"
        lines.append(f"{name}: {rule}{shown}")
    return "\n".join(lines)


def load_bot_settings(**overrides: Any) -> BotSettings:
    """Read and check the settings; raises ConfigError with one line per bad value."""
    try:
        return BotSettings(**overrides)
    except ValidationError as e:
        raise ConfigError(format_settings_errors(e)) from None


__all__ = ["BotSettings", "ConfigError", "format_settings_errors", "load_bot_settings"]
