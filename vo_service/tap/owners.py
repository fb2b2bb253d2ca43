"""Who owns a UWS job: an authenticated user, or the holder of an anonymous owner token.

The model (``docs/tap.md``, "Job ownership"):

* with ``[uws] owner_header`` set, a reverse proxy that authenticated the user
  names them in that header; their jobs are theirs alone (another user gets 403)
  and the job document's ``ownerId`` is that name;
* otherwise every client is anonymous. Its first job creation hands it a random
  owner token in a cookie (:data:`COOKIE`); the job list shows the jobs of the
  token the request carries, and quotas count per token. The token is stored
  only as a SHA-256 hash and never shown (``ownerId`` stays empty);
* a job's URL is a capability: its id is long and random, so whoever holds the
  URL (the client that created it, whether it keeps cookies or not) may read,
  change and delete an anonymous job. UWS 1.1 allows this, the job id being
  opaque; it keeps pyvo, TOPCAT and scripts working unchanged.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

COOKIE = "latentvo_uws_owner"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")


def new_job_id() -> str:
    """A job id no client can guess (192 random bits): the job URL is its capability."""
    return secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")


@dataclass(frozen=True)
class Owner:
    """The owner a request acts for.

    Attributes
    ----------
    key
        What its jobs are filed under: ``user:<name>`` or ``token:<sha256 hex>``.
    name
        The authenticated user's name (the jobs' ``ownerId``); None for a token.
    token
        An anonymous owner's token (the one the request brought, or a new one),
        which a job creation hands (back) to the client in the cookie, so the
        cookie lives as long as the newest job; None for an authenticated user.
    """

    key: str
    name: str | None = None
    token: str | None = None

    @classmethod
    def user(cls, name: str) -> Owner:
        """The authenticated user ``name``."""
        return cls(key=f"user:{name}", name=name)

    @classmethod
    def from_token(cls, token: str | None) -> Owner:
        """The holder of ``token``; a fresh token when it is missing or malformed."""
        if token is None or not _TOKEN.fullmatch(token):
            token = secrets.token_urlsafe(32)
        return cls(key=_token_key(token), token=token)

    def may_use(self, job_owner_key: str | None, job_owner_name: str | None) -> bool:
        """Whether this owner may act on a job of that owner.

        Jobs of an authenticated user are theirs alone; anonymous jobs belong to
        whoever holds their URL.
        """
        return job_owner_name is None or job_owner_key == self.key


def _token_key(token: str) -> str:
    return "token:" + hashlib.sha256(token.encode()).hexdigest()
