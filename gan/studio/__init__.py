"""The product studio in the browser: python -m gan.studio --workdir=DIR (see main.py).

main.py           the command: flags, compilation cache, start-up, uvicorn
app.py            the FastAPI app: the page, the JSON API, errors as sentences
schemas.py        the API's request shapes (validated, documented at /docs)
docs.py           /docs as plain HTML from the OpenAPI schema (no CDN)
engine.py         the model: a loaded run behind a lock, fixed compiled batch sizes, warm-up
jobs.py           background jobs (photo inversions), bounded in number and time
uploads.py        upload limits (bytes, pixels) and decoding
compile_cache.py  JAX's persistent compilation cache folder
encoding.py       images -> PNG data URLs
static/           index.html, studio.css, studio.js (shipped with the package; no CDN)
"""
