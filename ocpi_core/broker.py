"""The embedded broker (`filesystem://`, no Redis): kombu's file-system transport with messages written atomically.

kombu's own `_put` creates the message file under its final name and only then writes it, while `_get` takes any file
of the queue's name pattern at once: a worker polling between the two reads an empty file, and the JSONDecodeError
stops the whole worker ("Unrecoverable error"). Here a message is written under a name no queue matches, then renamed
(atomic within the folder) to its final name.
"""

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "ocpi_core.broker:Transport"


class Channel(filesystem.Channel):  # type: ignore[misc]
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        """Put a message onto `queue`: written in full under a partial name, then renamed into the queue."""
        final = os.path.join(self.data_folder_out, f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg")
        partial = final + ".part"  # `_get` matches "<anything>.<queue>.msg" only
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):  # type: ignore[misc]
    Channel = Channel


def install() -> None:
    """Make `filesystem://` URLs use this transport (in every process: producers and workers)."""
    TRANSPORT_ALIASES["filesystem"] = ALIAS
