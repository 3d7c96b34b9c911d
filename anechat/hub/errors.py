"""Typed errors of a pull, and the mapping from huggingface_hub / network errors to them.

Each error prints as one line a person can act on (``str(error)``); ``kind`` is the
machine-readable name for ``--json`` output.
"""

from __future__ import annotations

from anechat.engines.errors import AnechatError, ModelNotFound


class PullError(AnechatError):
    """Base of every error a pull raises on purpose (not an engine error: nothing ran)."""

    kind = "pull_failed"


class HubOffline(PullError):
    kind = "offline"


class RepoGated(PullError):
    kind = "gated"


class HubUnauthorized(PullError):
    kind = "unauthorized"


class NotEnoughSpace(PullError):
    kind = "disk_full"


class PullCancelled(PullError):
    kind = "cancelled"


class UnsafeHubValue(PullError):
    """The hub sent a revision, ETag or file name that must not become a path: nothing is downloaded."""

    kind = "unsafe_hub_value"


class DownloadMismatch(PullError):
    """A file's bytes are not what the hub announced (size or sha256): the file is deleted."""

    kind = "download_mismatch"


class CacheEscape(PullError):
    """A snapshot entry resolves outside the cache's ``blobs/``: what the pull created is removed."""

    kind = "cache_escape"


def hub_error(exc: BaseException, repo_id: str, revision: str | None, endpoint: str) -> AnechatError:
    """Map a huggingface_hub / network error to one line a person can act on."""
    import httpx2
    from huggingface_hub import errors as he

    login = "log in with `hf auth login` or set HF_TOKEN"
    if isinstance(exc, he.GatedRepoError):
        return RepoGated(f"{repo_id} is gated: accept its conditions at {endpoint}/{repo_id}", hint=f"then {login}")
    if isinstance(exc, he.RevisionNotFoundError):
        return ModelNotFound(f"{repo_id} has no revision '{revision}'", hint="check the branch, tag or commit after @")
    if isinstance(exc, he.RepositoryNotFoundError):
        return ModelNotFound(
            f"no model repo '{repo_id}' on the hub ({endpoint})",
            hint=f"check the name (owner/name); for a private repo, {login}",
        )
    if isinstance(exc, he.OfflineModeIsEnabled):
        return HubOffline(
            f"offline mode is on (HF_HUB_OFFLINE): cannot download {repo_id}",
            hint="unset HF_HUB_OFFLINE to download; anechat models list shows what is here",
        )
    if isinstance(exc, he.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return HubUnauthorized(f"not authorised to download {repo_id} (HTTP {status})", hint=login)
        if status == 404:
            return ModelNotFound(f"{repo_id}: not found on the hub (HTTP 404)")
        return PullError(f"the hub answered HTTP {status} for {repo_id}", hint="try again later")
    if isinstance(exc, (httpx2.TransportError, he.LocalEntryNotFoundError, ConnectionError, TimeoutError)):
        return HubOffline(
            f"cannot reach the Hugging Face hub ({endpoint}) to download {repo_id}: no network?",
            hint="check the connection and run the pull again; finished files are kept",
        )
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return NotEnoughSpace(f"the disk filled up while downloading {repo_id}", hint="free some space and pull again")
    if isinstance(exc, OSError):
        return PullError(f"download of {repo_id} failed: {exc}", hint="run the pull again; finished files are kept")
    return PullError(f"download of {repo_id} failed: {type(exc).__name__}: {exc}")


def offline_error() -> Exception:
    from huggingface_hub.errors import OfflineModeIsEnabled

    return OfflineModeIsEnabled("HF_HUB_OFFLINE is set")
