"""Uploaded files: the caps and the checks every upload and import goes through.

A file is refused above its cap before anything parses it (`upload.size` is what Django has
already streamed to a temporary file), with a sentence in the reader's language, and a refused
file is never stored. Photos are decoded by Pillow and stored re-encoded: what we keep is
pixels we decoded ourselves, under a name we chose, without the metadata a phone writes (EXIF
location, XMP) or whatever else rode along in the file.
"""

import io
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from config.errors import DomainValidationError

# Pillow's format name → the extension we store it under. HEIC needs a plugin we don't ship.
PHOTO_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def upload_max_bytes() -> int:
    """The most any upload may be: the largest of the caps."""
    return max(settings.PHOTO_MAX_BYTES, settings.IMPORT_MAX_BYTES)


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler keeping at most `upload_max_bytes()` of a file on disk.

    The rest of an oversized file is read off the connection and counted, not kept, so the
    file's `size` is the real one and the cap check refuses it with its true size, while 40 MB
    of noise never reaches the disk."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.kept = 0
        self.limit = upload_max_bytes()

    def receive_data_chunk(self, raw_data, start):
        room = self.limit - self.kept
        if room > 0:
            self.file.write(raw_data[:room])
            self.kept += min(room, len(raw_data))
        return None  # the file_size Django passes to file_complete counts every byte received


def refuse(field: str, sentence: str):
    raise DomainValidationError({field: [sentence]})


def too_big(size: int, limit: int) -> str | None:
    """The sentence refusing a file of `size` bytes above `limit`, or None."""
    if size <= limit:
        return None
    return _("The file is %(size)s; the limit is %(limit)s.") % {"size": filesizeformat(size), "limit": filesizeformat(limit)}


def check_size(upload, *, limit: int, field: str) -> None:
    """Refuse `upload` above `limit` bytes, before anything reads it."""
    if sentence := too_big(upload.size, limit):
        refuse(field, sentence)


def clean_photo(upload, *, field: str = "photo") -> ContentFile:
    """The photo to store for `upload`, re-encoded without metadata under a random name.

    Raises DomainValidationError (nothing stored) unless it is a JPEG, PNG or WebP within
    PHOTO_MAX_BYTES and PHOTO_MAX_PIXELS that Pillow opens, verifies and decodes."""
    check_size(upload, limit=settings.PHOTO_MAX_BYTES, field=field)
    not_a_photo = _("This file is not a JPEG, PNG or WebP picture; only photos are accepted.")
    try:
        upload.seek(0)
        # Only these decoders are tried: a file is never decoded as anything else.
        with Image.open(upload, formats=list(PHOTO_FORMATS)) as probe:
            fmt = probe.format
            width, height = probe.size
            if width * height > settings.PHOTO_MAX_PIXELS:
                refuse(
                    field,
                    _("The picture is %(width)d × %(height)d pixels; the limit is %(limit)s pixels.")
                    % {"width": width, "height": height, "limit": f"{settings.PHOTO_MAX_PIXELS:,}"},
                )
            probe.verify()
        upload.seek(0)
        with Image.open(upload, formats=[fmt]) as image:
            image.load()
            # Turned the way the camera meant, before the orientation tag goes with the rest.
            upright = ImageOps.exif_transpose(image)
            icc_profile = image.info.get("icc_profile")
            transparency = image.info.get("transparency")
            # Encoders write what `info` carries (EXIF, XMP, text chunks) unless told otherwise.
            upright.info = {}
            options = {"exif": b""}
            if icc_profile:
                options["icc_profile"] = icc_profile
            if fmt == "JPEG":
                options["quality"] = 90
            elif fmt == "PNG" and transparency is not None:
                options["transparency"] = transparency
            out = io.BytesIO()
            upright.save(out, format=fmt, **options)
    except DomainValidationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError):
        refuse(field, not_a_photo)
    finally:
        upload.seek(0)
    return ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.{PHOTO_FORMATS[fmt]}")
