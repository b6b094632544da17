"""Matrix transport (matrix-nio): the front is transport.py; see its docstring for the parts."""

from bot.transports.matrix.e2ee import LATE_KEY_SUFFIX, LATE_KEY_WINDOW_S
from bot.transports.matrix.errors import (
    MatrixSendError,
    MatrixSendPermanent,
    MatrixSendTransient,
    MatrixStartError,
    classify_send_error,
)
from bot.transports.matrix.mapping import parse_geo_uri, safe_filename
from bot.transports.matrix.media import media_dir_for
from bot.transports.matrix.session import MatrixHealth
from bot.transports.matrix.transport import LoadUndecrypted, MatrixTransport, OnBatch

__all__ = [
    "LATE_KEY_SUFFIX",
    "LATE_KEY_WINDOW_S",
    "LoadUndecrypted",
    "MatrixHealth",
    "MatrixSendError",
    "MatrixSendPermanent",
    "MatrixSendTransient",
    "MatrixStartError",
    "MatrixTransport",
    "OnBatch",
    "classify_send_error",
    "media_dir_for",
    "parse_geo_uri",
    "safe_filename",
]
