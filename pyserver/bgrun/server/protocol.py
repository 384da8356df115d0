"""pygls's language server protocol with errors that name the field at fault.

For a message whose params do not fit its lsprotocol type, pygls sends a bare InvalidParams
and logs a traceback. This subclass raises InvalidParams whose message lists each field and
what was wrong, and leaves the logging to the connection (one line per rejected message).
"""

from __future__ import annotations

from typing import Any

import cattrs
from pygls.exceptions import JsonRpcInvalidParams
from lsprotocol import types
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol, lsp_method


class BgrunProtocol(LanguageServerProtocol):
    def __init__(self, server, converter: cattrs.Converter):
        self.message_converter = converter
        super().__init__(server, converter)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        """Return pygls's initialize result, changed to request no text document events."""
        result = yield from super().lsp_initialize(params)
        result.capabilities.text_document_sync = types.TextDocumentSyncOptions(
            open_close=False, change=types.TextDocumentSyncKind.None_)
        return result

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Return the message as its lsprotocol type, or raise InvalidParams naming each field."""
        if "jsonrpc" not in data or "method" not in data:
            return super().structure_message(data)
        method = data["method"]
        fallback = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
        message_type = self.get_message_type(method) or fallback
        try:
            return self.message_converter.structure(data, message_type)
        except cattrs.BaseValidationError as error:
            problems = "; ".join(cattrs.transform_error(error, path="message"))
            raise JsonRpcInvalidParams(f"invalid params for {method!r}: {problems}") from None
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise JsonRpcInvalidParams(f"invalid params for {method!r}: {type(error).__name__}: {error}") from None
