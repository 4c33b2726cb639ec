"""Finding the person an admin means (issue 17 item 8): an exact login name opens their
page at once; anything else lists the accounts whose login name starts with the text or
whose display name contains it, from the directory's ``UserSearch`` role."""
from __future__ import annotations

from dataclasses import dataclass

from authgate.directory import Directory, UserMatch, UserSearch, normalise_username

#: how many people one search lists (the directory is asked for one more, to say "more")
SEARCH_LIMIT = 25
MAX_QUERY = 64


@dataclass(frozen=True)
class PeopleFound:
    query: str
    #: the login name to open directly: the text named exactly one enabled account
    exact: str = ""
    matches: tuple[UserMatch, ...] = ()
    more: bool = False


def find_people(*, directory: Directory, search: UserSearch | None, text: str,
                limit: int = SEARCH_LIMIT) -> PeopleFound:
    """The one account the text names exactly opens directly; when the search finds
    others too, they are listed (the exact one among them)."""
    query = " ".join(text.split())[:MAX_QUERY]
    if not query:
        return PeopleFound(query="")
    name = normalise_username(query)
    matches = search.search_users(query, limit=limit) if search is not None else []
    only_that_one = all(m.username == name for m in matches)
    if only_that_one and directory.lookup(name) is not None:
        return PeopleFound(query=query, exact=name)
    return PeopleFound(query=query, matches=tuple(matches[:limit]), more=len(matches) > limit)
