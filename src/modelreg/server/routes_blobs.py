"""/api/v1/blobs: content-addressed bytes. Uploads are verified while they stream in;
downloads support ``Range`` and conditional requests and never change for a URL."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from fastapi import Header, Path
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelreg.artifacts.hashing import HEAD_BYTES, Digest, Readable
from modelreg.artifacts.local import LocalArtifactStore
from modelreg.domain.manifest import validate_digest
from modelreg.errors import DigestMismatch, IntegrityError, InvalidArgument, NotFound
from modelreg.server import metrics, socket_body, zerocopy
from modelreg.server.context import Ctx
from modelreg.server.dispatch import blocking
from modelreg.server.ranges import Unsatisfiable, etag, matches, parse_range
from modelreg.server.responses import ok
from modelreg.server.routing import api_router
from modelreg.server.schemas import BlobList, FinishUpload, HeadList, UploadLinkRequest
from modelreg.server.uploads import store_body
from modelreg.service import links

router = api_router("/api/v1/blobs", tags=["blobs"])

# Read per hop to a worker thread when sending a blob: each hop costs a fraction of a
# millisecond, which at 1 MiB was a fifth of a fast download's time.
CHUNK = 4 * 1024 * 1024
Sha256 = Annotated[str, Path(description="Hex SHA-256 of the blob (64 lowercase characters).")]
CACHE = "public, max-age=31536000, immutable"
# Larger than any disk or bucket object, and small enough for every JSON number we send.
MAX_SIZE = 2**62


def _digest(sha256: str) -> str:
    validate_digest(sha256)
    return sha256


@router.post("/missing", summary="Which blobs are not stored yet")
def missing(ctx: Ctx, body: BlobList) -> Response:
    """The subset of the given digests the server does not have; upload only those."""
    blobs = ctx.registry.blobs
    wanted = sorted({_digest(sha) for sha in body.sha256})
    ctx.registry.service.authorize_upload(ctx.principal)
    return ok({"missing": [sha for sha in wanted if blobs.stat(sha) is None]})


@router.post("/heads", summary="Whether blobs may hold files of these sizes and heads")
def known_heads(ctx: Ctx, body: HeadList) -> Response:
    """For each file (its size and the SHA-256 of its first MiB), whether a stored blob
    may be that file: ``{"known": [...], "stream": bool}``.

    A file that is not ``known`` cannot be stored yet, so a client may send it with
    ``POST /api/v1/blobs`` while it hashes it, instead of hashing it first. A known one
    may be stored: hash it and ask ``/missing``. ``stream`` is false when the server
    would rather have large blobs go straight to its bucket (upload links), which needs
    the digest first. Blobs under a MiB are never known: send those by digest."""
    files = [(f.size, f.head) for f in body.files]
    answer = ctx.registry.service.known_heads(ctx.principal, files)
    return ok({"known": answer, "stream": not _uploads_direct(ctx)})


def _uploads_direct(ctx: Ctx) -> bool:
    return links.uploads_direct(ctx.registry.blobs, enabled=ctx.registry.config.direct_uploads)


@router.post("", status_code=201, summary="Upload a blob, named by the server")
async def upload_unnamed(
    ctx: Ctx,
    request: Request,
    content_length: Annotated[int | None, Header(ge=0, le=MAX_SIZE)] = None,
) -> Response:
    """Stream a blob whose digest the client does not know yet; the server hashes it
    while writing and answers with the digest: ``{"sha256", "size"}``.

    ``Content-Length`` is required, and a body of another length is refused with 400
    DIGEST_MISMATCH: nothing is stored. The client compares the digest with its own hash
    of what it sent. Bytes that are already stored keep one copy."""
    if content_length is None:
        # With no digest to check, the length is the only thing that tells a body cut
        # short (say, by a proxy that ends it cleanly) from a whole one.
        raise InvalidArgument("an upload without a digest needs a Content-Length header")
    digest = await _store(ctx, request, None, content_length)
    return ok({"sha256": digest.sha256, "size": digest.size}, 201)


async def _store(ctx: Ctx, request: Request, sha256: str | None, length: int | None) -> Digest:
    """Authorize, then stream the body into the blob store, verified while it is written;
    the blob's head is recorded for ``/heads``."""
    service = ctx.registry.service
    await anyio.to_thread.run_sync(service.authorize_upload, ctx.principal)
    blobs = ctx.registry.blobs

    def store(reader: Readable) -> Digest:
        try:
            return blobs.put(reader, expected_sha256=sha256, expected_size=length)
        except IntegrityError as exc:
            # The client sent wrong bytes: its mistake, not corruption on the server.
            raise DigestMismatch(exc.message, **exc.details) from exc

    body = socket_body.take(request.scope, length)
    if body is None:
        digest = await store_body(request.stream(), store)
    else:
        with contextlib.closing(body):
            try:
                digest = await anyio.to_thread.run_sync(store, body)
            except Exception:
                await anyio.to_thread.run_sync(body.drain)
                raise
    metrics.BYTES.labels(direction="in").inc(digest.size)
    if digest.size >= HEAD_BYTES:
        await anyio.to_thread.run_sync(service.remember_heads, [digest.sha256])
    return digest


@router.put("/{sha256}", status_code=201, summary="Upload a blob")
async def upload(
    ctx: Ctx,
    request: Request,
    sha256: Sha256,
    content_length: Annotated[int | None, Header(ge=0, le=MAX_SIZE)] = None,
) -> Response:
    """Stream a blob to the server, which hashes it while writing.

    The body must hash to ``sha256`` and, when ``Content-Length`` is given, have that many
    bytes; otherwise the answer is 400 DIGEST_MISMATCH and nothing is stored. Uploading a
    blob that already exists keeps one copy.
    """
    digest = await _store(ctx, request, _digest(sha256), content_length)
    return ok({"sha256": digest.sha256, "size": digest.size}, 201)


@router.post("/{sha256}/download-link", summary="A presigned URL to download a blob")
def download_link(ctx: Ctx, sha256: Sha256) -> Response:
    """``{"direct": true, "url", "expires_in"}``: a short-lived URL that reads the blob
    straight from the bucket, or ``{"direct": false}`` when the client must use
    ``GET /api/v1/blobs/{sha256}`` (a local store, or direct downloads turned off).
    404 if the blob is not stored. The client verifies what it reads, as always."""
    ctx.registry.service.authorize_blob_read(ctx.principal, _digest(sha256))
    config = ctx.registry.config
    link = links.download_link(
        ctx.registry.blobs,
        _digest(sha256),
        enabled=config.direct_downloads,
        expires=config.presign_expiry,
    )
    return ok(link.to_dict() if link else {"direct": False})


@router.post("/{sha256}/upload-link", summary="A presigned URL to upload a blob")
def upload_link(ctx: Ctx, sha256: Sha256, body: UploadLinkRequest) -> Response:
    """``{"direct": true, "url", "upload_id", "expires_in"}``: PUT the blob's bytes to
    ``url`` (with ``Content-Length: size``), then call ``finish-upload``; until then
    the bytes are not a blob. ``{"direct": false}``: use ``PUT /api/v1/blobs/{sha256}``."""
    ctx.registry.service.authorize_upload(ctx.principal)
    config = ctx.registry.config
    link = links.upload_link(
        ctx.registry.blobs,
        _digest(sha256),
        body.size,
        enabled=config.direct_uploads,
        expires=config.presign_expiry,
    )
    return ok(link.to_dict() if link else {"direct": False})


@router.post("/{sha256}/finish-upload", status_code=201, summary="Finish a direct upload")
@blocking
def finish_upload(ctx: Ctx, sha256: Sha256, body: FinishUpload) -> Response:
    """The server reads the uploaded bytes back from the bucket and hashes them; only if
    they match ``sha256`` and ``size`` do they become the blob. Otherwise 400
    DIGEST_MISMATCH, and the upload is deleted."""
    ctx.registry.service.authorize_upload(ctx.principal)
    try:
        digest = links.finish_upload(ctx.registry.blobs, body.upload_id, _digest(sha256), body.size)
    except IntegrityError as exc:
        raise DigestMismatch(exc.message, **exc.details) from exc
    ctx.registry.service.remember_heads([digest.sha256])
    return ok({"sha256": digest.sha256, "size": digest.size}, 201)


@router.head("/{sha256}", summary="Whether a blob exists, and its size")
def head(ctx: Ctx, sha256: Sha256) -> Response:
    """200 with Content-Length and ETag if stored, 404 otherwise."""
    ctx.registry.service.authorize_blob_read(ctx.principal, _digest(sha256))
    stat = ctx.registry.blobs.stat(sha256)
    if stat is None:
        raise NotFound(f"blob {sha256} is not stored", sha256=sha256)
    return Response(
        status_code=200,
        headers={"content-length": str(stat.size), "etag": etag(sha256), "accept-ranges": "bytes"},
    )


@router.get("/{sha256}", summary="Download a blob")
async def download(
    ctx: Ctx,
    request: Request,
    sha256: Sha256,
    range_: Annotated[str | None, Header(alias="range")] = None,
    if_none_match: Annotated[str | None, Header()] = None,
    if_range: Annotated[str | None, Header()] = None,
) -> Response:
    """The blob's bytes. Supports one ``Range`` (206), ``If-None-Match`` (304) and
    ``If-Range``. The client checks the bytes against the digest it asked for."""
    blobs = ctx.registry.blobs
    _digest(sha256)
    await anyio.to_thread.run_sync(ctx.registry.service.authorize_blob_read, ctx.principal, sha256)
    stat = await anyio.to_thread.run_sync(blobs.stat, sha256)
    if stat is None:
        raise NotFound(f"blob {sha256} is not stored", sha256=sha256)
    tag = etag(sha256)
    headers = {"etag": tag, "accept-ranges": "bytes", "cache-control": CACHE}
    if matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    if if_range is not None and not matches(if_range, tag):
        range_ = None  # the client's partial copy is of other bytes: send everything
    try:
        wanted = parse_range(range_, stat.size)
    except Unsatisfiable:
        return Response(
            status_code=416, headers={**headers, "content-range": f"bytes */{stat.size}"}
        )
    start, end = wanted if wanted is not None else (0, stat.size - 1)
    length = end - start + 1
    headers["content-length"] = str(length)
    status = 200
    if wanted is not None:
        status = 206
        headers["content-range"] = f"bytes {start}-{end}/{stat.size}"
    src = await anyio.to_thread.run_sync(blobs.open, sha256)
    if zerocopy.supported(request.scope) and _has_fileno(src):
        # A store that writes around the page cache reads around it too (MODELREG_DIRECT_IO).
        direct = isinstance(blobs, LocalArtifactStore) and blobs.direct_io
        return zerocopy.FileSlice(
            src, start, length, status_code=status, headers=headers, direct=direct
        )
    return StreamingResponse(
        _stream(src, start, length),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


def _has_fileno(src: io.RawIOBase) -> bool:
    """Whether ``src`` is an operating system file (a local blob) that ``sendfile`` can
    read; a bucket's stream is not."""
    try:
        src.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return True


async def _stream(src: io.RawIOBase, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        if start:
            await anyio.to_thread.run_sync(src.seek, start)
        left = length
        while left > 0:
            chunk = await anyio.to_thread.run_sync(src.read, min(CHUNK, left))
            if not chunk:
                # The blob shrank under us (corruption): end early; the client's
                # length and digest checks report it.
                return
            left -= len(chunk)
            metrics.BYTES.labels(direction="out").inc(len(chunk))
            yield chunk
    finally:
        src.close()
