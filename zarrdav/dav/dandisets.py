"""Resources of ``/dandisets/``: Dandisets, versions, folders and assets.

Everything comes from the archive's atpath endpoint. A path is resolved by
asking the archive about that path itself, then, if nothing is there, about
the Zarr asset it may lie inside (``_locate``): two calls at any depth,
whatever the size of the folders on the way, which are listed only when
their listing is asked for. Zarr assets are recognised by what the archive
says (``zarr`` set), never by their name. Each answer is kept, so a chunk
request under a known Zarr asset costs a few dict lookups (``Answers``:
lock-free hits) and one manifest lookup.

A Zarr asset is shown as of the checksum in its metadata, through the same
``ZarrViews`` as ``/zarrs/``. Without a manifest for that checksum (not
built yet, or no checksum while the Zarr is ingesting) the missing-manifest
policy decides: ``live-draft`` serves a live, unpinned listing under
``draft`` only and refuses published versions with 503; ``error`` refuses
everywhere.

Answers about published versions are kept without expiry, except an empty
listing or nothing at a path, which may be a transient fault of the archive:
those are kept for ``ttl`` like a draft's. Concurrent misses of one key make
one archive call.
Who asks matters only for embargoed Dandisets. Whether one is embargoed
is asked anonymously and shared (for ``ttl``); every other answer about an
open Dandiset is asked anonymously and shared too, whatever token the
visitor brought. Under an embargoed Dandiset an anonymous visitor is
answered 401 without asking the archive; a visitor with a token is asked
about with that token, and the answers are kept under the visitor's key
(``zarrdav.edge.identity``) for ``ttl``, never shown to anyone else, and
marked private. A refused token raises, and errors are never kept. The
embargoed Dandiset's files are served presigned (``File.private``): its
Zarr entries, and its blobs straight from their S3 URL (one hop).

Values the archive gives for headers (ETags, media types, S3 URLs) are
checked before use, and a blob redirects straight to S3 only on the hosts
the operator named.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import yaml

from zarrdav.dav.resources import UNDATED, Collection, File, Resource, md5_of
from zarrdav.dav.zarrs import ZarrViews
from zarrdav.edge import identity
from zarrdav.errors import NotFound, Unauthorized, Unavailable, UpstreamError
from zarrdav.manifests.model import Manifest
from zarrdav.routes import (
    DandisetRoute,
    DandisetsRoute,
    ReleasesRoute,
    Route,
    VersionRoute,
    zarr_version_path,
)
from zarrdav.upstreams.answers import MISSING, Answers
from zarrdav.upstreams.archive import KIND, ArchiveClient, Asset, Dandiset, Folder, VersionSummary
from zarrdav.upstreams.flights import UpstreamGate
from zarrdav.upstreams.live import LiveDirectory, LiveEntry, LiveZarrs
from zarrdav.upstreams.values import header_value

T = TypeVar("T")
# Names a Zarr asset nearly always has: asked about first when a path may lie inside one.
_ZARR_SUFFIXES = (".zarr", ".ngff")
_NAMED_LIKE_ZARR = re.compile(r"\.(?:zarr|ngff)/", re.IGNORECASE)


class DandisetViews:
    def __init__(
        self,
        archive: ArchiveClient,
        zarrs: ZarrViews,
        live: LiveZarrs,
        *,
        ttl: float,
        blob_redirect: str = "archive",
        redirect_hosts: frozenset[str] = frozenset(),
        missing_manifest: str = "live-draft",
        retry_after: int = 600,
        gate: UpstreamGate | None = None,
    ) -> None:
        """``redirect_hosts``: the hosts (``host[:port]``) blobs may redirect to with ``blob_redirect = "s3"``."""
        self._archive = archive
        self._zarrs = zarrs
        self._live = live
        self._blob_redirect = blob_redirect
        self._redirect_hosts = frozenset(host.lower() for host in redirect_hosts)
        self._missing_manifest = missing_manifest
        self._retry_after = retry_after  # seconds, for the 503 of a missing manifest
        self._gate = gate or UpstreamGate()
        self._answers = Answers(KIND, self._gate, ttl=ttl)

    # -- the two questions a provider asks ------------------------------------

    def resource(self, route: Route, path: str) -> Resource:
        match route:
            case DandisetsRoute():
                return Collection("/dandisets/", "Directory", modified=UNDATED)
            case DandisetRoute(dandiset_id=dandiset_id):
                return self._dandiset_collection(self._dandiset(dandiset_id))
            case ReleasesRoute(dandiset_id=dandiset_id):
                if not self._published(dandiset_id):
                    raise NotFound(f"Dandiset {dandiset_id} has no published versions")
                return self._releases_collection(self._dandiset(dandiset_id))
            case VersionRoute(path=""):
                return self._version_root(route)
            case VersionRoute(path="dandiset.yaml"):
                return self._dandiset_yaml(route)
            case VersionRoute():
                return self._inside_version(route)
        raise NotFound(f"nothing at {path}")

    def members(self, route: Route, collection: Collection) -> Iterable[Resource]:
        """A list; a pinned Zarr asset's directory an iterator in name order (see ``ZarrViews.members``)."""
        match route:
            case DandisetsRoute():
                return [self._dandiset_collection(dandiset) for dandiset in self._listing()]
            case DandisetRoute(dandiset_id=dandiset_id):
                dandiset = self._dandiset(dandiset_id)
                base = f"/dandisets/{dandiset_id}/"
                members: list[Resource] = []
                if dandiset.draft is not None:
                    members.append(self._version_collection(
                        dandiset_id, f"{base}draft/", "Draft version", dandiset.draft))
                if dandiset.most_recent_published is not None:
                    latest = dandiset.most_recent_published
                    members.append(self._version_collection(dandiset_id, f"{base}latest/", "Latest release", latest,
                                                            canonical=f"{base}releases/{latest.version}/"))
                    members.append(self._releases_collection(dandiset))
                return members
            case ReleasesRoute(dandiset_id=dandiset_id):
                return [
                    self._version_collection(dandiset_id, f"{collection.path}{v.version}/", "Published version", v)
                    for v in self._published(dandiset_id)
                ]
            case VersionRoute(path=""):
                version, fixed = self._resolve(route)
                yaml_file = self._dandiset_yaml(route)
                return [yaml_file, *self._folder_members(route, version, fixed, "")]
            case VersionRoute():
                return self._members_inside(route)
        raise NotFound(f"nothing at {collection.path}")

    # -- Dandisets and versions -----------------------------------------------

    def _listing(self) -> list[Dandiset]:
        """Every Dandiset: anonymously, shared; with a token, the embargoed ones it may see too."""
        visitor = identity.current()
        if visitor.token is None:
            return self._answers.get(("dandisets",), False, lambda: list(self._archive.dandisets()))
        identity.depends_on_visitor()
        return self._answers.get(
            ("dandisets", visitor.key), False, lambda: list(self._archive.dandisets(embargoed=True))
        )

    def _embargoed(self, dandiset_id: str) -> bool:
        """Whether the Dandiset is embargoed, as an anonymous visitor learns it (shared, for the TTL)."""
        return self._answers.get(
            ("embargoed", dandiset_id), False, identity.as_anonymous(lambda: self._ask_embargo(dandiset_id))
        )

    def _ask_embargo(self, dandiset_id: str) -> bool:
        try:
            dandiset = self._archive.dandiset(dandiset_id)
        except Unauthorized:
            return True
        if dandiset.embargo_status != "OPEN":
            return True
        self._answers.keep(("dandiset", dandiset_id), False, dandiset)  # the shared record, asked already
        return False

    def _dandiset(self, dandiset_id: str) -> Dandiset:
        return self._cached(("dandiset", dandiset_id), False, lambda: self._archive.dandiset(dandiset_id))

    def _published(self, dandiset_id: str) -> list[VersionSummary]:
        return self._cached(
            ("published", dandiset_id), False, lambda: self._archive.published_versions(dandiset_id)
        )

    def _dandiset_collection(self, dandiset: Dandiset) -> Collection:
        current = dandiset.draft or dandiset.most_recent_published  # its title and size now
        return Collection(
            f"/dandisets/{dandiset.identifier}/",
            "Dandiset",
            size=None if current is None else current.size,
            created=dandiset.created,
            modified=dandiset.modified or UNDATED,
            details="embargoed" if dandiset.embargo_status != "OPEN" else None,
            links=(("Metadata", f"{self._archive.public_url}/dandisets/{_segment(dandiset.identifier)}/"),),
            title=None if current is None else current.name or None,
        )

    def _releases_collection(self, dandiset: Dandiset) -> Collection:
        """``releases/``, dated by its latest release."""
        latest = dandiset.most_recent_published
        modified = None if latest is None else latest.modified
        return Collection(f"/dandisets/{dandiset.identifier}/releases/", "Directory", modified=modified or UNDATED)

    def _version_collection(
        self, dandiset_id: str, path: str, kind: str, version: VersionSummary, canonical: str | None = None
    ) -> Collection:
        return Collection(
            path,
            kind,
            size=version.size,
            created=version.created,
            modified=version.modified or UNDATED,
            canonical=canonical,
            details=version.version if version.asset_count is None
            else f"{version.version}, {version.asset_count} assets",
            links=(("Metadata", f"{self._archive.public_url}/dandisets/{_segment(dandiset_id)}/versions/"
                                f"{_segment(version.version)}/"),),
            title=version.name or None,
            citation=version.citation,
            doi=version.doi,
            version=version.version,
        )

    def _resolve(self, route: VersionRoute) -> tuple[str, bool]:
        """The version id a route names, and whether its content is fixed (published)."""
        if route.version == "draft":
            return "draft", False
        if route.version == "latest":
            latest = self._dandiset(route.dandiset_id).most_recent_published
            if latest is None:
                raise NotFound(f"Dandiset {route.dandiset_id} has no published version")
            return latest.version, True
        return route.version, True

    def _version_root(self, route: VersionRoute) -> Collection:
        version, fixed = self._resolve(route)
        info = self._version_info(route.dandiset_id, version, fixed)
        kind = {"draft": "Draft version", "latest": "Latest release"}.get(route.version, "Published version")
        return self._version_collection(route.dandiset_id, route.root, kind, info, self._canonical(route, version, ""))

    def _version_info(self, dandiset_id: str, version: str, fixed: bool) -> VersionSummary:
        return self._cached(
            ("info", dandiset_id, version), fixed, lambda: self._archive.version_info(dandiset_id, version)
        )

    def _canonical(self, route: VersionRoute, version: str, path: str) -> str | None:
        """The permanent path of ``path`` (inside the version) when the route reaches it through ``latest``."""
        if route.version != "latest":
            return None
        return f"/dandisets/{route.dandiset_id}/releases/{version}/{path}"

    def _dandiset_yaml(self, route: VersionRoute) -> File:
        version, fixed = self._resolve(route)
        body = self._cached(
            ("yaml", route.dandiset_id, version), fixed,
            lambda: yaml.safe_dump(
                self._archive.version_metadata(route.dandiset_id, version),
                sort_keys=False, allow_unicode=True, default_flow_style=False,
            ).encode(),
        )
        md5 = hashlib.md5(body).hexdigest()
        return File(f"{route.root}dandiset.yaml", "Metadata", size=len(body), body=body,
                    media_type="text/yaml; charset=utf-8", etag=md5, md5=md5,
                    modified=self._version_info(route.dandiset_id, version, fixed).modified or UNDATED,
                    canonical=self._canonical(route, version, "dandiset.yaml"))

    # -- folders and assets ---------------------------------------------------

    def _children(self, dandiset_id: str, version: str, fixed: bool, path: str) -> dict[str, Folder | Asset]:
        """The folder's children by path, in the archive's order (by path)."""
        return self._cached(
            ("children", dandiset_id, version, path), fixed,
            lambda: {item.path: item for item in self._archive.children(dandiset_id, version, path)},
        )

    def _folder_members(self, route: VersionRoute, version: str, fixed: bool, path: str) -> list[Resource]:
        """The resources of a folder's children, kept as long as its listing: a
        10,000-asset folder's cost ten times its page's rendering to make."""
        def build() -> list[Resource]:
            children = self._children(route.dandiset_id, version, fixed, path)
            return [self._item(route, child, version) for child in children.values()]

        return self._cached(("members", route.dandiset_id, route.root, version, path), fixed, build)

    def _known(self, dandiset_id: str, version: str, fixed: bool, path: str) -> Folder | Asset | None:
        """What is at ``path`` as far as kept answers tell (None: nothing), else ``MISSING``."""
        known = self._peek(("item", dandiset_id, version, path), fixed)
        if known is not MISSING:
            return known  # type: ignore[no-any-return]
        listing = self._peek(("children", dandiset_id, version, path.rpartition("/")[0]), fixed)
        if listing is MISSING:
            return MISSING  # type: ignore[no-any-return]
        found: Folder | Asset | None = listing.get(path)
        self._keep(("item", dandiset_id, version, path), fixed, found)
        return found

    def _item_at(self, dandiset_id: str, version: str, fixed: bool, path: str) -> Folder | Asset | None:
        """What is at ``path``: from kept answers, else one archive call about that path alone."""
        known = self._known(dandiset_id, version, fixed, path)
        if known is not MISSING:
            return known
        return self._cached(
            ("item", dandiset_id, version, path), fixed,
            lambda: self._archive.item_at(dandiset_id, version, path),
        )

    def _locate(self, route: VersionRoute) -> tuple[Folder | Asset, str, str]:
        """The folder or asset a path reaches, the rest of the path inside a Zarr asset, the version.

        Assets are leaves (the archive holds nothing under an asset's path),
        so the first asset on the way ends the walk. Warm, the asset or the
        path is a kept answer (an item of its own, or in its folder's kept
        listing): one lookup per segment. Cold, the archive is asked about
        the path itself; when nothing is there, the path may lie inside an
        asset, which is then the deepest of its prefixes the archive knows.
        ``_next_probe`` picks which prefix to ask about (one named like a
        Zarr first, so that a chunk costs two calls), and each answer (an
        asset, a folder, nothing) narrows the search. Names only choose what
        to ask first: what is a Zarr is what the archive says, and a Zarr
        not named like one costs a call or two more, never a listing.
        """
        version, fixed = self._resolve(route)
        dandiset_id, path = route.dandiset_id, route.path.rstrip("/")
        # Kept answers about the path's prefixes: a warm chunk's Zarr asset
        # is one of them (every request comes here). The first prefix named
        # like a Zarr is nearly always it: one lookup; then all, shallowest first.
        named = _NAMED_LIKE_ZARR.search(path)
        if named is not None:
            known = self._peek(("item", dandiset_id, version, path[:named.end() - 1]), fixed)
            if isinstance(known, Asset):
                return self._reached(route, known, path, named.end() - 1, version)
        end = path.find("/")
        while end > 0:
            known = self._peek(("item", dandiset_id, version, path[:end]), fixed)
            if isinstance(known, Asset):
                return self._reached(route, known, path, end, version)
            end = path.find("/", end + 1)
        ends = [index for index, char in enumerate(path) if char == "/"]
        ends.append(len(path))
        deepest_folder = -1  # index in ends; -1: the version root
        # Then everything kept: items, and the folders' listings (kept items
        # of their own from then on).
        for position, end in enumerate(ends):
            known = self._known(dandiset_id, version, fixed, path[:end])
            if known is None:
                raise NotFound(f"nothing at {route.path!r} in Dandiset {route.dandiset_id} {route.version}")
            if isinstance(known, Asset):
                return self._reached(route, known, path, end, version)
            if isinstance(known, Folder):
                deepest_folder = position
                if end == len(path):
                    return known, "", version
        found = self._item_at(dandiset_id, version, fixed, path)
        if found is not None:
            return found, "", version
        absent = len(ends) - 1  # the shallowest prefix known to hold nothing
        while absent - deepest_folder > 1:
            position = _next_probe(path, ends, deepest_folder, absent)
            found = self._item_at(dandiset_id, version, fixed, path[:ends[position]])
            if isinstance(found, Asset):
                return self._reached(route, found, path, ends[position], version)
            if isinstance(found, Folder):
                deepest_folder = position
            else:
                absent = position
        raise NotFound(f"nothing at {route.path!r} in Dandiset {route.dandiset_id} {route.version}")

    def _reached(self, route: VersionRoute, asset: Asset, path: str, end: int, version: str) -> tuple[Asset, str, str]:
        """The asset a path reaches at ``path[:end]``, and the rest of the path inside it."""
        rest = path[end + 1:]
        if rest and not asset.zarr:
            raise NotFound(f"nothing at {route.path!r} in Dandiset {route.dandiset_id} {route.version}:"
                           f" {asset.path!r} is a file")
        return asset, rest, version

    def _inside_version(self, route: VersionRoute) -> Resource:
        item, rest, version = self._locate(route)
        if isinstance(item, Folder) or not item.zarr:
            return self._item(route, item, version)
        pinned = self._pinned_manifest(route, item)
        if not rest:
            return self._item(route, item, version, pinned=pinned is not None)
        root = f"{route.root}{item.path}/"
        if pinned is None:
            with self._gate.waiting("S3"):
                return self._live_resource(root, self._live.lookup(item.zarr, rest))
        return self._zarrs.entry_in(pinned[1], item.zarr, pinned[0], root, rest,
                                    private=self._embargoed(route.dandiset_id))

    def _members_inside(self, route: VersionRoute) -> Iterable[Resource]:
        item, rest, version = self._locate(route)
        if isinstance(item, Folder):
            _, fixed = self._resolve(route)
            return self._folder_members(route, version, fixed, item.path)
        if not item.zarr:
            raise NotFound(f"{item.path} is a file")
        root = f"{route.root}{item.path}/"
        pinned = self._pinned_manifest(route, item)
        if pinned is None:
            with self._gate.waiting("S3"):
                entries = self._live.children(item.zarr, rest)
            return [self._live_resource(root, entry) for entry in entries]
        return self._zarrs.members_in(pinned[1], item.zarr, pinned[0], root, rest)

    def _item(
        self, route: VersionRoute, item: Folder | Asset, version: str, *, pinned: bool = True
    ) -> Resource:
        """``pinned=False``: a Zarr asset shown live, which has no permanent /zarrs/ link."""
        path = f"{route.root}{item.path}"
        canonical = self._canonical(route, version, item.path)
        if isinstance(item, Folder):
            # A folder has no date of its own in the archive: its version's.
            modified = self._version_info(route.dandiset_id, version, route.version != "draft").modified
            return Collection(f"{path}/", "Directory", size=item.total_size, modified=modified or UNDATED,
                              details=None if item.total_assets is None else f"{item.total_assets} assets",
                              canonical=None if canonical is None else f"{canonical}/")
        api = self._archive.public_url
        metadata_url = (f"{api}/dandisets/{_segment(route.dandiset_id)}/versions/{_segment(version)}"
                        f"/assets/{_segment(item.asset_id)}/")
        what = f"{KIND}: asset {item.path!r}"
        if item.zarr:
            checksum = item.zarr_checksum
            if checksum is not None:
                header_value(checksum, "ETag", what)
            links: tuple[tuple[str, str], ...] = (("Metadata", metadata_url),)
            permanent = None
            if checksum is not None and pinned:
                permanent = zarr_version_path(item.zarr, checksum)  # the Zarr's own name wins over releases/
                links = (("Permanent link", permanent), *links)
            return Collection(f"{path}/", "Zarr", size=item.size, created=item.created,
                              modified=item.modified or UNDATED, etag=checksum if pinned else None, links=links,
                              pinned=pinned, canonical=permanent, version=version, zarr=True,
                              metadata_url=metadata_url)
        location = f"{api}/assets/{_segment(item.asset_id)}/download/"
        private = self._embargoed(route.dandiset_id)
        if private:
            # Presigned by zarrdav (the signer refuses any URL off its bucket):
            # the archive's download URL would need the token of its own.
            if item.s3_url is None:
                raise UpstreamError(f"{what}: embargoed, and its metadata names no S3 URL to sign")
            location = header_value(item.s3_url, "Location", what)
        elif self._blob_redirect == "s3" and item.s3_url and self._may_redirect_to(item.s3_url):
            location = header_value(item.s3_url, "Location", what)
        media_type = item.metadata.get("encodingFormat")
        etag = item.blob_etag
        return File(path, "File", size=item.size, created=item.created, modified=item.modified or UNDATED,
                    etag=None if etag is None else header_value(etag, "ETag", what), location=location,
                    media_type=header_value(media_type, "Content-Type", what) if isinstance(media_type, str) else None,
                    md5=md5_of(item.blob_md5) or md5_of(etag), canonical=canonical, metadata_url=metadata_url,
                    private=private)

    def _may_redirect_to(self, url: str) -> bool:
        """Whether ``url`` is on a host blobs may redirect to; elsewhere the archive's download URL serves."""
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc.lower() in self._redirect_hosts

    # -- Zarr assets: pinned or, by policy, live ---------------------------------

    def _pinned_manifest(self, route: VersionRoute, asset: Asset) -> tuple[str, Manifest] | None:
        """The checksum and manifest to serve the Zarr asset as of; None where a live view is allowed."""
        zarr_id, checksum = asset.zarr or "", asset.zarr_checksum
        if checksum is not None:
            try:
                return checksum, self._zarrs.manifests.manifest(zarr_id, checksum)
            except NotFound:
                pass
        # A live view lists the bucket anonymously, which an embargoed Zarr's objects refuse.
        live_allowed = (self._missing_manifest == "live-draft" and route.version == "draft"
                        and not self._embargoed(route.dandiset_id))
        if live_allowed:
            return None
        why = (
            f"Zarr {zarr_id} has no checksum yet (it is still being ingested)"
            if checksum is None
            else f"the manifest of Zarr {zarr_id} at checksum {checksum} is missing from the manifest tree"
        )
        if route.version == "draft":
            raise Unavailable(f"{why}; not serving it unpinned (missing_manifest = error)", self._retry_after)
        raise Unavailable(f"{why}; a published version is never served unpinned", self._retry_after)

    def _live_resource(self, root: str, entry: LiveEntry) -> Resource:
        if isinstance(entry, LiveDirectory):
            path = f"{root}{entry.path}/" if entry.path else root
            # S3 gives a prefix no date, and the newest key below it would take a walk.
            return Collection(path, "Directory (live)", pinned=False, modified=UNDATED)
        return File(f"{root}{entry.path}", "File (live)", size=entry.size, modified=entry.modified,
                    etag=entry.etag, location=entry.url, pinned=False, md5=md5_of(entry.etag))

    def _cached(self, key: tuple[str, ...], fixed: bool, load: Callable[[], T]) -> T:
        """``load()``'s answer, kept without expiry if ``fixed``, else for the TTL (see ``Answers``).

        Every key is a tuple of what the archive's answer depends on, the
        Dandiset second; ``_scoped`` adds who asks where that matters, here,
        in ``_peek`` and in ``_keep``, the only ways into the kept answers.
        """
        scoped, fixed = self._scoped(key, fixed)
        return self._answers.get(scoped, fixed, identity.as_anonymous(load) if scoped is key else load)

    def _peek(self, key: tuple[str, ...], fixed: bool) -> Any:
        """The kept answer for ``key``, or ``MISSING``: asks the archive at most whether it is embargoed."""
        return self._answers.peek(*self._scoped(key, fixed))

    def _keep(self, key: tuple[str, ...], fixed: bool, value: Any) -> None:
        """Keep what another answer told (a folder's child) as the answer for ``key``."""
        self._answers.keep(*self._scoped(key, fixed), value)

    def _scoped(self, key: tuple[str, ...], fixed: bool) -> tuple[tuple[str, ...], bool]:
        """``key`` itself for an open Dandiset; under an embargoed one, the visitor's
        own key (for the TTL), or 401 for an anonymous visitor."""
        dandiset_id = key[1]
        if not self._embargoed(dandiset_id):
            return key, fixed
        visitor = identity.current()
        if visitor.token is None:
            raise Unauthorized(f"Dandiset {dandiset_id} is embargoed: sign in with a DANDI API token (as the password)")
        identity.depends_on_visitor()
        return (*key, visitor.key), False


def _next_probe(path: str, ends: list[int], folder: int, absent: int) -> int:
    """Which prefix to ask about between the deepest known folder and the shallowest known absence.

    Names guess what the archive will say: the deepest prefix named like a
    Zarr (as a Zarr asset nearly always is), else the deepest named like a
    file (with an extension; folders seldom have one). When the absence is
    such a name, its parent is likely the deepest folder. Else the middle.
    """
    names = [path[ends[position - 1] + 1 if position else 0:ends[position]].lower()
             for position in range(folder + 1, absent + 1)]
    for hint in (_looks_like_zarr, _looks_like_file):
        for offset in range(len(names) - 2, -1, -1):
            if hint(names[offset]):
                return folder + 1 + offset
    if _looks_like_zarr(names[-1]) or _looks_like_file(names[-1]):
        return absent - 1
    return (folder + absent) // 2


def _looks_like_zarr(name: str) -> bool:
    return name.endswith(_ZARR_SUFFIXES)


def _looks_like_file(name: str) -> bool:
    return name.rfind(".") > 0


def _segment(value: str) -> str:
    """An identifier from the archive as one URL path segment."""
    return quote(value, safe="")
