"""HTTP serving: ``seq2seq serve MODEL_DIR ...``.

Modules, each importing only those listed before it:

- ``models``: the served model directories (a :class:`~seq2seq.decoding.translator.Translator` each) and what
  ``/v1/models`` and ``/languages`` say about them;
- ``batcher``: feeds the sentences of concurrent requests into running decoding streams (continuous batching),
  off the event loop;
- ``limits``: what a request may ask for, and :class:`~seq2seq.serve.limits.ApiError` for what it may not;
- ``keys`` and ``keys_command``: the API key database and ``seq2seq keys``; ``access``: who may translate how
  much (keys, rate and size limits);
- ``state``: what every endpoint shares (models, batcher, limits, access rules);
- ``libre`` and ``native``: the LibreTranslate-compatible endpoints and the native ``/v1`` ones;
- ``app``: the FastAPI app: both APIs, errors as JSON, the web page in ``static/``, offline API docs;
- ``server``: binds the socket and runs uvicorn, with a graceful stop on SIGTERM and Ctrl-C.

Needs the ``serve`` extra (``pip install -e '.[serve]'``).
"""
