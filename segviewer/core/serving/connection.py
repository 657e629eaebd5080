"""Where the models are, as one typed value: `ConnectionSpec`.

Every entry point builds one: the CLIs from their flags (`add_connection_flags` +
`ConnectionSpec.from_args`, the same flags on segviewer-predict, segviewer-review and the viewer),
the Connect dialog from its fields, and anything typed as text through `ConnectionSpec.parse`.
`open()` hands the spec to the backend kind's opener, found in `KINDS`: adding a kind is one
module with an `open_spec(spec)` function plus one `register_kind` line below. Openers are
imported only when used, so opening a remote backend never loads TensorFlow. A remote spec may
name several endpoints (comma-separated `target`): `open()` then builds one backend over all of
them (`multi`).
"""

from __future__ import annotations

import argparse
import importlib
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from segviewer.core.serving import tls as tls_files
from segviewer.core.serving.base import Backend, BackendError
from segviewer.core.serving.calls import (
    DEFAULT_MAX_MESSAGE_MB,
    DEFAULT_RETRY_FOR,
    DEFAULT_TIMEOUT,
)

_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$")
# gRPC name schemes grpc resolves itself, e.g. dns:///serving:8500 (every address it resolves
# to, balanced round robin by grpc).
GRPC_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:")
MULTI_OPENER = "segviewer.core.serving.multi:open_spec"


@dataclass(frozen=True)
class Kind:
    name: str  # "grpc"
    title: str  # "gRPC", for menus and messages
    opener: str  # "package.module:function" taking a ConnectionSpec


KINDS: dict[str, Kind] = {}


def register_kind(name: str, title: str, opener: str) -> None:
    KINDS[name] = Kind(name, title, opener)


register_kind("local", "in-process", "segviewer.core.serving.local_backend:open_spec")
register_kind("grpc", "gRPC", "segviewer.core.serving.grpc_backend:open_spec")
register_kind("rest", "REST", "segviewer.core.serving.rest_backend:open_spec")


@dataclass(frozen=True)
class ConnectionSpec:
    """kind "local" (target: a SavedModel, model or base folder), "grpc" (target: "host:port")
    or "rest" (target: a base URL such as http://localhost:8501). models: the model names to ask
    a server about (TF Serving cannot list them). tls: gRPC over TLS (REST: the URL says https).
    ca_file, cert_file/key_file: CA to trust, client certificate (both remote kinds).
    headers: sent with every call, e.g. ("authorization", "Bearer x"). timeout: seconds for each
    call as a whole. retry_for: seconds to keep retrying an unavailable server.
    max_message_mb: the largest request or answer. A remote target may list several endpoints
    separated by commas (`targets`); allow_mixed_versions: let them serve different versions."""

    kind: str
    target: str
    models: tuple[str, ...] = ()
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    retry_for: float = DEFAULT_RETRY_FOR
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB
    allow_mixed_versions: bool = False

    @property
    def targets(self) -> tuple[str, ...]:
        """The endpoints: one, or several for a remote kind."""
        if self.kind == "local":
            return (self.target,)
        return tuple(t for t in self.target.split(",") if t)

    @classmethod
    def parse(cls, text: str, **options: Any) -> ConnectionSpec:
        """What a user typed: "host:port" or "grpc(s)://host:port" (gRPC), "http(s)://..."
        (REST) or a folder (in-process; an existing folder wins over host:port). `options` are
        the other fields."""
        text = text.strip()
        if "," in text and not Path(text).exists():
            specs = [cls.parse(part, **options) for part in text.split(",") if part.strip()]
            kinds = {spec.kind for spec in specs}
            if len(kinds) != 1 or "local" in kinds:
                raise BackendError(f"'{text}' mixes kinds of endpoint — list gRPC addresses or "
                                   "REST URLs, not both, and no folders", "INVALID_ARGUMENT")
            return replace(specs[0], target=",".join(s.target for s in specs),
                           tls=any(s.tls for s in specs))
        if text.startswith(GRPC_SCHEMES):
            return cls("grpc", text, **options)
        if text.startswith(("http://", "https://")):
            return cls("rest", text.rstrip("/"), **options)
        if text.startswith(("grpc://", "grpcs://")):
            if text.startswith("grpcs://"):
                options["tls"] = True
            return cls("grpc", text.split("://", 1)[1], **options)
        if _HOST_PORT.match(text) and not Path(text).exists():
            return cls("grpc", text, **options)
        if "://" in text:
            raise BackendError(f"unknown server address '{text}' — use host:port or "
                               "grpc://host:port for gRPC, http(s)://host:port for REST",
                               "INVALID_ARGUMENT")
        options = {k: v for k, v in options.items() if k == "models"}  # no TLS in-process
        return cls("local", text, **options)

    @classmethod
    def from_args(cls, args: argparse.Namespace, models: tuple[str, ...] = ()) -> ConnectionSpec:
        """From the flags of `add_connection_flags`; raises BackendError naming a bad flag."""
        options = spec_options(args, models)
        if getattr(args, "saved_model", None):
            return cls("local", str(Path(args.saved_model)), models=options["models"])
        if getattr(args, "rest", None):
            urls = [url.strip() for url in args.rest.split(",") if url.strip()]
            for url in urls:
                if not url.startswith(("http://", "https://")):
                    raise BackendError(f"--rest takes an http(s):// URL, got '{url}'",
                                       "INVALID_ARGUMENT")
            return cls("rest", ",".join(url.rstrip("/") for url in urls), **options)
        servers = [s.strip() for s in (getattr(args, "server", None) or "").split(",")]
        if any(servers):
            specs = []
            for server in filter(None, servers):
                if "://" in server and not server.startswith(("grpc://", "grpcs://",
                                                              *GRPC_SCHEMES)):
                    raise BackendError(f"--server takes HOST:PORT (gRPC), got '{server}' — "
                                       "use --rest for a REST URL", "INVALID_ARGUMENT")
                named = server.startswith(("grpc://", "grpcs://", *GRPC_SCHEMES))
                specs.append(cls.parse(server if named else f"grpc://{server}", **options))
            return replace(specs[0], target=",".join(s.target for s in specs),
                           tls=any(s.tls for s in specs))
        raise BackendError("no model given: add --server, --rest or --saved-model",
                           "INVALID_ARGUMENT")

    def check(self) -> None:
        """Refuse incoherent settings before anything is sent, naming the flag to fix."""
        if self.kind not in KINDS:
            raise BackendError(f"unknown backend kind '{self.kind}' (known: "
                               f"{', '.join(KINDS)})", "INVALID_ARGUMENT")
        if self.kind == "local":
            return
        if self.timeout <= 0:
            raise BackendError(f"--timeout must be more than 0 s, got {self.timeout:g}",
                               "INVALID_ARGUMENT")
        if self.retry_for < 0:
            raise BackendError(f"--retry-for must be 0 or more, got {self.retry_for:g}",
                               "INVALID_ARGUMENT")
        if self.max_message_mb <= 0:
            raise BackendError(f"--max-message-mb must be more than 0, got "
                               f"{self.max_message_mb:g}", "INVALID_ARGUMENT")
        if not self.targets:
            raise BackendError("no endpoint given", "INVALID_ARGUMENT")
        for target in self.targets:
            tls_files.check_flags(target if self.kind == "rest" else None, self.tls,
                                  self.ca_file, self.cert_file, self.key_file)

    def open(self) -> Backend:
        """Make the Backend (may block: call it off the GUI thread). Raises BackendError."""
        self.check()
        opener = KINDS[self.kind].opener if len(self.targets) == 1 else MULTI_OPENER
        module, _, function = opener.partition(":")
        return getattr(importlib.import_module(module), function)(self)

    def describe(self) -> str:
        """One line for menus and the status bar, e.g. "gRPC localhost:8500 (deeplab)"."""
        kind = KINDS[self.kind].title if self.kind in KINDS else self.kind
        tls = " TLS" if self.tls and self.kind == "grpc" else ""
        models = f" ({', '.join(self.models)})" if self.models else ""
        return f"{kind}{tls} {self.target}{models}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConnectionSpec:
        return cls(
            kind=str(data["kind"]),
            target=str(data["target"]),
            models=tuple(str(m) for m in data.get("models", ())),
            tls=bool(data.get("tls", False)),
            ca_file=str(data.get("ca_file", "")),
            cert_file=str(data.get("cert_file", "")),
            key_file=str(data.get("key_file", "")),
            headers=tuple((str(k), str(v)) for k, v in data.get("headers", ())),
            timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
            retry_for=float(data.get("retry_for", DEFAULT_RETRY_FOR)),
            max_message_mb=float(data.get("max_message_mb", DEFAULT_MAX_MESSAGE_MB)),
            allow_mixed_versions=bool(data.get("allow_mixed_versions", False)),
        )


# --- the command-line flags, shared by segviewer-predict, segviewer-review and segviewer -------


def _header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    return key.strip().lower(), value  # gRPC metadata keys must be lower case


class _JoinEndpoints(argparse.Action):
    """A repeated --server/--rest adds endpoints: the value is their comma-separated list."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        before = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, f"{before},{values}" if before else values)


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value:g}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value:g}")
    return value


def add_connection_flags(
    parser: argparse.ArgumentParser, *, where: bool = True, required: bool = False
) -> argparse._MutuallyExclusiveGroup | None:
    """Add --server/--rest/--saved-model (with `where`; returned so a tool can add e.g. --demo)
    and the connection options: TLS files, headers, timeout, retry window, message limit."""
    group = None
    if where:
        group = parser.add_mutually_exclusive_group(required=required)
        group.add_argument("--server", metavar="HOST:PORT", action=_JoinEndpoints,
                           help="TF Serving gRPC address; several: repeat it or separate "
                           "them with commas (dns:///NAME:PORT: every address NAME resolves to)")
        group.add_argument("--rest", metavar="URL", action=_JoinEndpoints,
                           help="TF Serving REST URL, e.g. http://host:8501 or https://...; "
                           "several: repeat it or separate them with commas")
        group.add_argument("--saved-model", metavar="DIR",
                           help="run in-process: a SavedModel, model folder or base folder")
    parser.add_argument("--tls", action="store_true",
                        help="gRPC over TLS (REST: give an https:// URL)")
    parser.add_argument("--ca-file", metavar="PEM", help="CA certificate(s) to trust")
    parser.add_argument("--cert-file", metavar="PEM", help="client certificate (mutual TLS)")
    parser.add_argument("--key-file", metavar="PEM", help="client key (mutual TLS)")
    parser.add_argument("--header", type=_header, action="append", default=[], metavar="K=V",
                        help="header (gRPC metadata) sent with every call (repeatable)")
    parser.add_argument("--timeout", type=_positive, metavar="S",
                        help=f"seconds for each call as a whole (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--retry-for", type=_seconds, metavar="S",
                        help="keep retrying an unavailable or restarting server this long "
                        f"(default {DEFAULT_RETRY_FOR:g})")
    parser.add_argument("--max-message-mb", type=_positive, metavar="MB",
                        help="largest request or answer in MB "
                        f"(default {DEFAULT_MAX_MESSAGE_MB:g})")
    parser.add_argument("--allow-mixed-versions", action="store_true",
                        help="with several endpoints: let them serve different model versions")
    return group


def spec_options(args: argparse.Namespace, models: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ConnectionSpec fields the flags of `add_connection_flags` give, for `parse`."""
    options: dict[str, Any] = {
        "models": tuple(models),
        "tls": bool(args.tls),
        "ca_file": args.ca_file or "",
        "cert_file": args.cert_file or "",
        "key_file": args.key_file or "",
        "headers": tuple(args.header),
        "allow_mixed_versions": bool(getattr(args, "allow_mixed_versions", False)),
    }
    for name in ("timeout", "retry_for", "max_message_mb"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options
