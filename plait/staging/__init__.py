"""Moving files to and from hosts that do not share the driver's filesystem.

A :class:`Stager` reads what a remote file is (for memo keys), fetches it to a local
path and pushes a local file to a URL. :class:`FsspecStager` does that through fsspec,
for every protocol fsspec knows (``https://``, ``sftp://``, ``s3://`` with its package, ...).
:class:`Staging` is an executor's choice of when to stage; see docs/backends.md.
"""

from plait.staging._fsspec import FsspecStager, StagingError, check_url, is_url
from plait.staging._protocol import Stager, Staging, StagingMode, staging_of

__all__ = [
    "FsspecStager",
    "Stager",
    "Staging",
    "StagingError",
    "StagingMode",
    "check_url",
    "is_url",
    "staging_of",
]
