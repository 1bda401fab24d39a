"""Request bodies of the privacy function, validated by pydantic (unknown fields refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateRequestBody(Strict):
    type: Literal["export", "erasure"]
    # Erasure only: the step-up proof (P25), one of: the current password (password accounts), a Google ID
    # token from a fresh Google sign-in (accounts with Google), a second-factor code (accounts with TOTP on).
    # None is needed within a few minutes of a step-up in the same session.
    current_password: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    google_id_token: Annotated[str, Field(min_length=1, max_length=8192)] | None = None
    totp_code: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class CancelByLinkBody(Strict):
    """The cancel page's button: the request id and the token from the mail link's fragment."""

    request: Annotated[str, Field(min_length=1, max_length=128)]
    token: Annotated[str, Field(min_length=1, max_length=512)]
