"""Recording and replaying the conformance cassettes (vcrpy).

* :func:`make_vcr` — the vcrpy configuration for recording (``"all"``) and
  replay (``"none"``): the readable serializer, request matching on the body
  as parsed JSON, scrubbing, and a persister that refuses to write a secret.
* :func:`record_cassettes` — run the scenarios against a base URL (a live
  provider, or the emulator) and write ``cassettes/<provider>/<scenario>.yaml``.
* :func:`load_interactions` — a cassette's interactions with exact body bytes;
  :func:`load_provenance` — where it came from.
* :mod:`provider_impl.recording.secrets` — :func:`find_secrets`,
  :func:`scan_paths` (``provider-impl scan-secrets``).
"""

from provider_impl.recording.config import (
    MATCH_ON,
    CannotOverwriteExistingCassetteException,
    RecordedInteraction,
    SecretScanningPersister,
    json_body_matcher,
    load_interactions,
    load_provenance,
    make_vcr,
)
from provider_impl.recording.record import RecordResult, cassette_path, record_cassettes
from provider_impl.recording.scrub import REDACTED, Scrubber, UnscrubbableResponse, real_uri
from provider_impl.recording.secrets import (
    SecretFinding,
    SecretLeakError,
    find_secrets,
    scan_paths,
)
from provider_impl.recording.serializer import (
    SERIALIZER,
    SERIALIZER_NAME,
    encode_json_body,
)

__all__ = [
    "MATCH_ON",
    "REDACTED",
    "SERIALIZER",
    "SERIALIZER_NAME",
    "CannotOverwriteExistingCassetteException",
    "RecordResult",
    "RecordedInteraction",
    "Scrubber",
    "SecretFinding",
    "SecretLeakError",
    "SecretScanningPersister",
    "UnscrubbableResponse",
    "cassette_path",
    "encode_json_body",
    "find_secrets",
    "json_body_matcher",
    "load_interactions",
    "load_provenance",
    "make_vcr",
    "real_uri",
    "record_cassettes",
    "scan_paths",
]
