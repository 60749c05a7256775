"""The recommendation service: JSON endpoints over one trained model, and a page to use them.

``alsmf serve --model PATH`` runs :func:`alsmf.serve.app.create_app` under uvicorn. The parts:

- :mod:`~alsmf.serve.model_holder`: the model being served and its atomic replacement when
  the file changes (a request always finishes on the model it started with);
- :mod:`~alsmf.serve.params`: reading a request's query and body, with the limits that keep
  a request small;
- :mod:`~alsmf.serve.answers`: what each endpoint answers, computed by the model's own
  queries (no numerics here);
- :mod:`~alsmf.serve.app`: the routes, the JSON errors, the optional bearer token and the
  static page in ``page/`` (plain HTML, CSS and JS, nothing fetched from elsewhere).

Nothing under :mod:`alsmf` outside this package imports it, so the model and the other
commands never load the web libraries.
"""
