"""HTTP serving: ``seq2seq serve MODEL_DIR ...``.

Layers, each importing only the ones above it:

- ``models``: the served model directories (a :class:`~seq2seq.translator.Translator` each) and what
  ``/v1/models`` and ``/languages`` say about them;
- ``batcher``: queues the sentences of concurrent requests and decodes them together, off the event loop;
- ``api``: the FastAPI app (LibreTranslate-compatible ``/translate`` and ``/languages``, the native
  ``/v1/...`` endpoints, the web page in ``static/``);
- ``server``: binds the socket and runs uvicorn, with a graceful stop on SIGTERM.

Needs the ``serve`` extra (``pip install -e '.[serve]'``).
"""
