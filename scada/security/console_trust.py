"""The console of this machine trusted by a server: the step `cityscada demo` takes before it opens the console.

A fresh machine has no console certificate and a server that trusts none, so the demo's console would be refused.
This makes the console's certificate where `cityscada hmi` looks for it (hmi.security, as `cityscada hmi
--make-certificate` does) and imports it into the server's trust list (as `cityscada pki trust <file>` does). Both
steps keep what exists: running it again changes nothing. Only for a demonstration on one machine: a real control
post trusts each console's certificate by hand, after checking its thumbprint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from scada.security.pki import PkiFolder

if TYPE_CHECKING:
    from hmi.security import ConsoleCertificate

log = logging.getLogger(__name__)


async def trust_local_console(pki: PkiFolder, console_pki_dir: Path | None = None) -> ConsoleCertificate:
    """Create the console's certificate if needed (default folder: the console's) and trust it in `pki`."""
    from hmi.security import ensure_certificate

    own = await ensure_certificate(console_pki_dir)
    entry = pki.trust(own.cert)
    log.info("console certificate %s (%s) trusted for the demo: %s", own.thumbprint[:16], own.uri, entry.path)
    return own
