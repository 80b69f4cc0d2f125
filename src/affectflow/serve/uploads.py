"""Uploaded media on disk: one private folder per service, server-chosen file names, size limits.

No name or path given by a client ever reaches the file system: an upload is written to
``<private dir>/<32 random hex digits><ext>``, where ``ext`` is the lower-cased extension of the client's file name
**only if** it is one of :data:`~affectflow.serve.settings.MEDIA_EXTENSIONS` (it selects the decoder; anything else
is refused). The client's name is kept only as a display string (:func:`display_name`), never joined to a path.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path, PurePosixPath, PureWindowsPath

from affectflow.fsutil import pid_tempdir
from affectflow.serve.settings import MEDIA_EXTENSIONS


class UploadError(Exception):
    """An upload the service refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def display_name(filename: str | None) -> str:
    """A client's file name reduced to something safe to echo back: the last path component, printable ASCII
    letters, digits and ``._- ``, at most 80 characters (``"upload"`` when nothing is left)."""
    if not filename:
        return "upload"
    base = PureWindowsPath(PurePosixPath(str(filename)).name).name
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")[:80]
    return base or "upload"


def media_extension(filename: str | None) -> str:
    """The lower-cased extension of a client's file name, checked against the accepted media extensions.

    Raises
    ------
    UploadError
        415 when the name has no extension or one that is not a media type the service decodes.
    """
    name = display_name(filename)
    ext = os.path.splitext(name)[1].lower()
    if ext not in MEDIA_EXTENSIONS:
        got = f"extension {ext!r}" if ext else "no extension"
        raise UploadError(
            415,
            f"The uploaded file {name!r} has {got}; expected an audio or video file with one of the extensions "
            f"{', '.join(sorted(MEDIA_EXTENSIONS))}.",
        )
    return ext


class UploadStore:
    """The service's private upload folder.

    Parameters
    ----------
    parent:
        Where the private folder is made (default: the system temp dir).
    max_mb:
        Largest upload in MiB.
    """

    def __init__(self, parent: str | os.PathLike | None, max_mb: float) -> None:
        # affectflow-serve-<pid>-XXXX; the folders of killed services are removed here (affectflow.fsutil)
        self.root = pid_tempdir(parent, "affectflow-serve-")
        os.chmod(self.root, 0o700)
        self.max_mb = float(max_mb)
        self.max_bytes = int(max_mb * 1024 * 1024)

    def new_path(self, ext: str) -> Path:
        """A fresh server-chosen path with extension ``ext`` (which must be an accepted media extension)."""
        if ext not in MEDIA_EXTENSIONS:  # defence in depth: callers pass media_extension()'s result
            raise ValueError(f"not a media extension: {ext!r}")
        return self.root / f"{uuid.uuid4().hex}{ext}"

    def too_large(self, size: int | None = None) -> UploadError:
        """The 413 error for an upload over the limit."""
        mb = self.max_mb
        got = f" ({size / (1024 * 1024):.1f} MiB)" if size is not None else ""
        return UploadError(413, f"The upload is larger than the service's limit of {mb:g} MiB{got}.")

    def remove(self, path: str | os.PathLike) -> None:
        """Delete an upload (only files inside the private folder; missing files are ignored)."""
        p = Path(path)
        if p.parent != self.root:
            return
        try:
            p.unlink()
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """Delete the private folder with everything in it."""
        shutil.rmtree(self.root, ignore_errors=True)


class _Sink:
    """Writes one upload into the store while the request body streams in (size-limited)."""

    def __init__(self, store: UploadStore) -> None:
        self.store = store
        self.path: Path | None = None
        self.file = None
        self.size = 0

    def open(self, ext: str) -> None:
        self.path = self.store.new_path(ext)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.store.max_bytes:
            raise self.store.too_large()
        self.file.write(data)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            self.store.remove(self.path)
            self.path = None


async def receive_upload(request, store: UploadStore) -> tuple[Path, str, dict[str, str]]:
    """Stream the media file of a request into ``store``.

    Two request forms are accepted:

    - ``multipart/form-data`` with the file in the field ``file`` (what a browser form or ``FormData`` sends);
      other fields are small text values (at most 1 KiB each, 16 in all) returned as ``fields``;
    - any other content type: the body is the file itself, its name in the query parameter ``filename``
      (``curl --data-binary @clip.wav 'http://.../predict?filename=clip.wav'``).

    Parameters
    ----------
    request:
        A Starlette request.
    store:
        Where the file goes.

    Returns
    -------
    tuple
        ``(path, display name, fields)``; the caller removes ``path`` when done.

    Raises
    ------
    UploadError
        413 (declared or streamed size over the limit), 415 (extension), 400 (no file, empty file, malformed
        multipart body).
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise UploadError(400, f"The Content-Length header {declared!r} is not a number.") from None
        # the multipart envelope adds a few hundred bytes around the file
        if n > store.max_bytes + 64 * 1024:
            raise store.too_large(n)
    ctype = request.headers.get("content-type", "")
    sink = _Sink(store)
    try:
        if ctype.lower().startswith("multipart/form-data"):
            name, fields = await _receive_multipart(request, ctype, sink)
        else:
            name = display_name(request.query_params.get("filename"))
            sink.open(media_extension(request.query_params.get("filename")))
            async for chunk in request.stream():
                if chunk:
                    sink.write(chunk)
            fields = {}
        sink.close()
    except BaseException:
        sink.discard()
        raise
    if sink.path is None:
        raise UploadError(400, "The request has no file: send it as the multipart field 'file' or as the body "
                               "with ?filename=NAME.EXT.")
    if sink.size == 0:
        sink.discard()
        raise UploadError(400, f"The uploaded file {name!r} is empty (0 bytes).")
    return sink.path, name, fields


async def _receive_multipart(request, ctype: str, sink: _Sink) -> tuple[str, dict[str, str]]:
    from python_multipart.multipart import MultipartParser, parse_options_header  # optional: requirements/serve.txt

    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(400, "The multipart request has no boundary in its Content-Type header.")
    state: dict = {"headers": {}, "field": b"", "value": b"", "kind": None, "name": None, "text": b""}
    fields: dict[str, str] = {}
    filename: list[str] = []
    errors: list[UploadError] = []

    def on_part_begin() -> None:
        state.update(headers={}, kind=None, name=None, text=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"].decode("latin-1")
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["headers"].get("content-disposition", ""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if b"filename" in opts or name == "file":
            if name != "file" or sink.path is not None:
                raise UploadError(400, f"Unexpected file field {name!r}: send exactly one file, in the field 'file'.")
            raw = opts.get(b"filename", b"").decode("utf-8", "replace")
            filename.append(display_name(raw))
            sink.open(media_extension(raw))
            state["kind"] = "file"
        else:
            if len(fields) >= 16:
                raise UploadError(400, "Too many form fields (at most 16).")
            state["kind"] = "text"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["kind"] == "file":
            sink.write(data[start:end])
        else:
            state["text"] += data[start:end]
            if len(state["text"]) > 1024:
                raise UploadError(400, f"Form field {state['name']!r} is longer than 1 KiB.")

    def on_part_end() -> None:
        if state["kind"] == "text":
            fields[state["name"]] = state["text"].decode("utf-8", "replace")

    def guard(fn):
        def wrapped(*a):
            if errors:
                return
            try:
                fn(*a)
            except UploadError as e:
                errors.append(e)
        return wrapped

    callbacks = {
        "on_part_begin": guard(on_part_begin),
        "on_header_field": guard(on_header_field),
        "on_header_value": guard(on_header_value),
        "on_header_end": guard(on_header_end),
        "on_headers_finished": guard(on_headers_finished),
        "on_part_data": guard(on_part_data),
        "on_part_end": guard(on_part_end),
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
            if errors:
                raise errors[0]
        parser.finalize()
    except UploadError:
        raise
    except Exception as e:  # noqa: BLE001 - python-multipart's parse errors: a malformed body
        raise UploadError(400, f"The multipart body is malformed: {e}") from None
    if errors:
        raise errors[0]
    return (filename[0] if filename else "upload"), fields
