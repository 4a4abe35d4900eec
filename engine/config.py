"""Engine settings: environment variables (AIGC_*) over an optional TOML file (AIGC_CONFIG).

The TOML file may hold an ``[engine]`` table (the bot reads ``[bot]`` from the same file).
Every bad value stops start-up with a line naming the variable and the rule.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, ValidationInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from aigc_common.config_file import ConfigError, load_toml_table


class _TomlTable(PydanticBaseSettingsSource):
    """Reads one table of the TOML file named by AIGC_CONFIG (lowest priority)."""

    def __init__(self, settings_cls: type[BaseSettings], table: str):
        super().__init__(settings_cls)
        self._data = load_toml_table(table)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIGC_", extra="ignore", validate_default=True)

    engine_host: str = "127.0.0.1"
    engine_port: int = Field(8700, ge=0, le=65535)
    engine_token: SecretStr | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = Field(0, ge=0, le=256, description="torch intra-op threads; 0 = all cores "
                         "(a generator process: all but one while the engine has more work in hand)")
    generator_processes: bool = Field(True, description="run each plugin generator in a child process "
                                                        "of its own (outside the engine's GIL)")
    data_dir: Path = Path("data")
    plugins_enabled: Annotated[list[str], NoDecode] = Field(default_factory=list, description="only these; empty = all")
    plugins_disabled: Annotated[list[str], NoDecode] = Field(default_factory=list)
    builtin_plugins: bool = True
    queue_max: int = Field(256, ge=1, le=1_000_000, description="queued outputs per generator")
    max_queue_delay_ms: float = Field(0.0, ge=0, le=10_000)
    job_deadline_s: float = Field(300.0, gt=0, le=86_400)
    max_count: int = Field(25, ge=1, le=64, description="outputs per job at most (a command may allow fewer); 25 = /name's list")
    artifact_ttl_s: float = Field(3600.0, gt=0)
    artifact_max_bytes: int = Field(512 * 2**20, ge=2**20)
    job_ttl_s: float = Field(86_400.0, gt=0, description="finished jobs kept this long")
    # 1 MiB: a job carries its guild's rules, and a full Discord AutoMod setup is ~450 KB of JSON
    max_body_bytes: int = Field(2**20, ge=1024, le=64 * 2**20)
    png_compress_level: int = Field(1, ge=0, le=9)
    visible_mark: bool = True
    # Content Credentials (C2PA): sign every PNG/GIF/WebP/MP4/WAV file the engine makes. An operator's
    # chain (PEM, signer first) and key; without them a local CA made once in data_dir/c2pa/.
    c2pa_sign: bool = Field(True, description="sign every file whose format can carry Content Credentials")
    c2pa_cert: Path | None = None
    c2pa_key: Path | None = None
    warmup: bool = True
    # Scale-out (engine/scaleout/): with a queue URL the API node appends outputs to Redis
    # Streams for `aigc worker`s and keeps jobs, outputs, files and the ledger in PostgreSQL.
    queue_url: SecretStr | None = Field(None, description="redis://HOST:6379/0; unset: the in-process queue")
    database_url: SecretStr | None = Field(None, description="postgresql://...; required with queue_url")
    database_synchronous_commit: bool = Field(
        True, description="wait for PostgreSQL's WAL flush at each commit (a job's acceptance, a batch's "
                          "results); false trades the last ~0.6 s of commits on a PostgreSQL or OS crash for "
                          "one fsync less per step (README, Scale-out)")
    queue_prefix: str = Field("aigc", pattern=r"^[A-Za-z0-9_.-]{1,40}$",
                              description="Redis key prefix: streams are PREFIX:gen:NAME")
    claim_idle_ms: int = Field(30_000, ge=100, le=3_600_000,
                               description="a worker's unacknowledged entries are claimed by others after this")
    log_format: Literal["json", "text"] = "json"

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        v = v.strip().lower()
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError("must be auto, cpu, cuda or cuda:N")

    @field_validator("plugins_enabled", "plugins_disabled", mode="before")
    @classmethod
    def _csv(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("queue_url")
    @classmethod
    def _queue_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return v

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if v is None:
            if info.data.get("queue_url") is not None:
                raise ValueError("required with AIGC_QUEUE_URL (jobs, files and the ledger are shared there)")
            return v
        if not v.get_secret_value().startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
            raise ValueError("must be a postgresql:// URL")
        return v

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return init_settings, env_settings, _TomlTable(settings_cls, "engine")


def format_validation_error(err: ValidationError, prefix: str = "AIGC_") -> str:
    lines = []
    for e in err.errors():
        name = prefix + "_".join(str(p) for p in e["loc"]).upper() if e["loc"] else prefix
        got = e.get("input")
        # never echo a secret: tokens, and URLs (they may carry a password)
        shown = "" if got is None or not e["loc"] or name.endswith(("TOKEN", "URL")) else f" (got {got!r})"
        lines.append(f"{name}: {e['msg']}{shown}")
    return "\n".join(lines)


def load_engine_settings(**overrides: Any) -> EngineSettings:
    """Load and validate settings; raises ConfigError with one line per bad value."""
    try:
        return EngineSettings(**overrides)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None
