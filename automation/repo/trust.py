"""Who may direct the bot: people who can push to the repository, and the accounts listed by name.

A review, a comment, a label on an issue or an issue's author counts only when the account
is listed in ``follow_ups.trusted_users``, or may push to the repository at the level
``follow_ups.trusted_permission`` sets (write by default; maintain or admin). Bot accounts
(logins ending in ``[bot]``, the only logins with brackets) count only when listed, whatever
their permission. Nobody else directs the bot, however the request is worded.

``author_association`` (sent with every comment, review and issue) is the fast path: an
account that is not the repository's OWNER, a MEMBER of its organisation or a COLLABORATOR
cannot push, so it is refused without a request; an OWNER can. A MEMBER or COLLABORATOR may
still be read-only (an organisation member, a triager), so for them, and for accounts with no
association at hand (who labelled an issue), the collaborator permission endpoint decides, one
request per account and run. A failed lookup is a GitHubError (the run fails, nothing is
spent): when in doubt, nobody is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from github.Repository import Repository

from ..core.config import Config
from . import github

# Sources: docs.github.com/graphql/reference/enums#commentauthorassociation and
# docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user.
MAY_PUSH_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
ASSOCIATION_TRUSTED_AT_ONCE = "OWNER"  # the owner of a personal repository: admin


@dataclass(frozen=True)
class Verdict:
    """Whether an account may direct the bot, and why (one phrase, for the log)."""

    trusted: bool
    reason: str


def meets(permission: str, role_name: str, bar: str) -> bool:
    """Whether a collaborator ``permission`` (admin/write/read/none) with ``role_name`` reaches ``bar``
    (write, maintain or admin). Maintain shows as permission "write" with role "maintain"; a custom
    role reaches maintain only through admin (its name says nothing GitHub defines)."""
    if bar == "admin":
        return permission == "admin"
    if bar == "maintain":
        return permission == "admin" or role_name == "maintain"
    return permission in ("admin", "write")


@dataclass
class Trust:
    """The verdicts of one run, each account looked up at most once."""

    remote: Repository
    config: Config
    _seen: dict[str, Verdict] = field(default_factory=dict)

    def check(self, login: str, association: str | None = None) -> Verdict:
        """The verdict on ``login``; ``association`` is GitHub's author_association where the
        item carries one (a comment, a review, an issue), None or "" where it does not (an event's
        actor): then the permission endpoint decides. Raises GitHubError when it cannot be read."""
        key = login.casefold()
        if not login:
            return Verdict(False, "is a deleted account")
        if key in self.config.trusted_users:
            return Verdict(True, "is listed in follow_ups.trusted_users")
        if key.endswith("[bot]"):
            return Verdict(False, "is a bot account not listed in follow_ups.trusted_users")
        if association and association not in MAY_PUSH_ASSOCIATIONS:
            return Verdict(False, f"cannot push to {self.remote.full_name} (author_association {association})")
        if association == ASSOCIATION_TRUSTED_AT_ONCE:
            return Verdict(True, f"is the owner of {self.remote.full_name}")
        if key not in self._seen:
            permission, role = github.permission(self.remote, login)
            bar = self.config.trusted_permission
            access = f"{'no' if role == 'none' else role} access to {self.remote.full_name}"
            self._seen[key] = (
                Verdict(True, f"has {access}") if meets(permission, role, bar)
                else Verdict(False, f"has {access}, below follow_ups.trusted_permission ({bar})")
            )
        return self._seen[key]
