"""The studio's web app: the page, its JSON API, and every error as a sentence.

create_app(engine) -> FastAPI. Routes are thin: validate the request (schemas.py), call the engine
(engine.py) or the job runner (jobs.py), encode the images (encoding.py). Every error answers
{"error": "<what is wrong and what is valid>"} with a 4xx status (5xx only for a bug, whose
traceback goes to the server log, never to the page).
"""
import importlib.resources
import logging
import time
from typing import Callable, List, Optional

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from gan.studio import docs, encoding, jobs as jobs_lib, schemas, uploads
from gan.studio.engine import Engine, InputError

STATIC = importlib.resources.files('gan.studio') / 'static'
MAX_JSON_BYTES = 64 * 1024  # Every JSON request is small; a bigger body is refused unread.
PHOTOS = '/api/photos'
# The page loads nothing from elsewhere (it works offline), and nothing may inject a script.
SECURITY_HEADERS = {
    'Content-Security-Policy': "default-src 'self'; img-src 'self' data: blob:; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; "
                               "frame-ancestors 'none'",
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
}


class ApiError(Exception):
  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def _error(status: int, message: str) -> JSONResponse:
  return JSONResponse({'error': message}, status_code=status)


def _validation_message(error: RequestValidationError) -> str:
  """pydantic's errors -> 'count: Input should be less than or equal to 64 (got 100)'."""
  parts = []
  for e in error.errors():
    where = '.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'request body'
    got = f' (got {e["input"]!r})' if 'input' in e and e.get('type') != 'missing' else ''
    if e.get('type') == 'json_invalid':
      parts.append('The request body is not valid JSON: send an object such as {"seed": 3}.')
    elif e.get('type') == 'model_attributes_type' or (where == 'request body' and e.get('type')
                                                      in ('dict_type', 'model_type')):
      parts.append('The request body must be a JSON object (see /docs).')
    else:
      parts.append(f'{where}: {e.get("msg")}{got}'[:300])
  return '; '.join(parts) or 'Invalid request (see /docs).'


class _BodyLimit:
  """ASGI middleware: JSON requests over MAX_JSON_BYTES are refused while they arrive (the photo
  upload counts its own, larger, limit)."""

  def __init__(self, app):
    self.app = app

  async def __call__(self, scope, receive, send):
    if scope['type'] != 'http' or scope['path'] == PHOTOS:
      return await self.app(scope, receive, send)
    received = 0

    async def limited_receive():
      nonlocal received
      message = await receive()
      received += len(message.get('body', b''))
      if received > MAX_JSON_BYTES:
        raise HTTPException(413, f'The request body is larger than {MAX_JSON_BYTES:,} bytes; API '
                            'requests are small JSON objects (see /docs).')
      return message

    return await self.app(scope, limited_receive, send)


def create_app(engine: Engine, limits: uploads.UploadLimits = uploads.UploadLimits(),
               job_runner: Optional[jobs_lib.JobRunner] = None,
               parse: Optional[Callable] = None, startup: Optional[dict] = None) -> FastAPI:
  """The studio app on a warmed-up engine.

  job_runner: where photo inversions run (default: one background worker, 2 waiting, 8 kept,
  300 s each). parse: text -> Parsed (gan.control.prompt.parse on the run's vocabulary by default).
  startup: start-up figures shown by /api/info.
  """
  app = FastAPI(title='productgan studio', docs_url=None, redoc_url=None,
                description='Generate, edit and invert products with a trained productgan '
                'model. Every error answers {"error": "..."} with a 4xx status.')
  app.add_middleware(_BodyLimit)
  vocabulary = engine.vocabulary
  if parse is None:
    from gan.control import prompt
    parse = lambda text: prompt.parse(text, vocabulary)
  runner = job_runner or inversion_runner(engine)
  app.state.jobs = runner
  app.router.add_event_handler('shutdown', runner.close)

  @app.middleware('http')
  async def security_headers(request: Request, call_next):
    response = await call_next(request)
    for key, value in SECURITY_HEADERS.items():
      response.headers.setdefault(key, value)
    return response

  @app.exception_handler(ApiError)
  async def api_error(request, e: ApiError):
    return _error(e.status, str(e))

  @app.exception_handler(InputError)
  async def input_error(request, e: InputError):
    return _error(400, str(e))

  @app.exception_handler(uploads.UploadError)
  async def upload_error(request, e: uploads.UploadError):
    return _error(e.status, str(e))

  @app.exception_handler(RequestValidationError)
  async def validation_error(request, e: RequestValidationError):
    return _error(422, _validation_message(e))

  @app.exception_handler(HTTPException)
  async def http_error(request, e: HTTPException):
    if e.status_code == 404:
      return _error(404, f'No such page or endpoint: {request.url.path}. The page is at /, the API '
                    'is listed at /docs.')
    if e.status_code == 405:
      return _error(405, f'{request.method} is not allowed on {request.url.path}; see /docs for '
                    'the method each endpoint takes.')
    return _error(e.status_code, str(e.detail))

  @app.exception_handler(Exception)
  async def internal_error(request, e: Exception):
    logging.exception('studio: %s %s failed', request.method, request.url.path)
    return _error(500, f'Internal error ({type(e).__name__}); the server log has the details.')

  # ---- The page and its documentation ----

  @app.get('/', include_in_schema=False)
  def index():
    return FileResponse(str(STATIC / 'index.html'), media_type='text/html')

  app.mount('/static', StaticFiles(directory=str(STATIC)), name='static')

  @app.get('/docs', include_in_schema=False, response_class=HTMLResponse)
  def api_docs():
    return docs.render(app.openapi())

  # ---- The API ----

  def product_json(product, image) -> dict:
    return dict(engine.describe(product), image=encoding.data_url(image))

  def product_of(ref: schemas.ProductRef):
    return engine.product(ref.seed, ref.index, ref.truncation, ref.attributes)

  @app.get('/api/info', summary='The run: attributes and their values, limits, edit directions')
  def info():
    return dict(engine.info(), upload=limits.to_json(),
                jobs={'max_waiting': runner.max_waiting, 'max_kept': runner.max_kept,
                      'timeout_s': runner.timeout_s},
                startup=startup or {})

  @app.post('/api/parse', summary='Read a description ("navy striped handbag") into attributes')
  def parse_text(request: schemas.ParseRequest):
    return parse(request.text).to_json()

  @app.post('/api/generate', summary='COUNT products of SEED with the given attributes')
  def generate(request: schemas.GenerateRequest):
    start = time.perf_counter()
    images, products = engine.generate(request.attributes, request.seed, request.count,
                                       request.truncation)
    return {'products': [product_json(p, im) for p, im in zip(products, images)],
            'ms': round(1000 * (time.perf_counter() - start), 1)}

  @app.post('/api/sweep', summary='The same product in every value of one attribute')
  def sweep(request: schemas.SweepRequest):
    images, products = engine.sweep(product_of(request.product), request.attribute)
    return {'attribute': vocabulary.resolve_attribute(request.attribute),
            'products': [product_json(p, im) for p, im in zip(products, images)]}

  @app.post('/api/edit', summary='The product moved along the edit directions (SeFa sliders)')
  def edit(request: schemas.EditRequest):
    image = engine.edit(product_of(request.product), request.strengths)
    return {'image': encoding.data_url(image), 'strengths': request.strengths}

  @app.post('/api/interpolate', summary='FRAMES images from one product to another')
  def interpolate(request: schemas.InterpolateRequest):
    images = engine.interpolate(product_of(request.product), product_of(request.to),
                                request.frames)
    return {'images': encoding.data_urls(images)}

  @app.post(PHOTOS, status_code=202,
            summary='Upload a photo (the request body: JPEG, PNG, WebP, ...); starts its inversion',
            openapi_extra={'requestBody': {'required': True, 'content': {
                'image/*': {'schema': {'type': 'string', 'format': 'binary'}}}}})
  async def upload_photo(request: Request, known: List[str] = Query(
      default=[], description='Attributes of the photo you know, as name=value (repeatable).')):
    known_attributes = {}
    for spec in known:
      name, eq, value = str(spec).partition('=')
      if not eq:
        raise InputError(f'known must be written as attribute=value (e.g. category=mug); got '
                         f'{spec!r}.')
      known_attributes[name.strip()] = value.strip()
    known_attributes = engine.assignments(known_attributes)
    uploads.check_declared_size(request.headers.get('content-length'), limits)
    data = await uploads.read_limited(request.stream(), limits)
    photo = await run_in_threadpool(uploads.decode_photo, data, engine.run.resolution, limits)
    try:
      job = runner.submit({'photo': photo, 'known': known_attributes})
    except jobs_lib.JobsBusy as e:
      raise ApiError(429, str(e)) from e
    return _job_json(job)

  @app.get('/api/jobs/{job_id}', summary='A photo inversion: state, progress, then the result')
  def job_status(job_id: str):
    return _job_json(_job(runner, job_id))

  @app.post('/api/jobs/{job_id}/variants',
            summary='The inverted photo with other attributes (and/or every value of one)')
  def variants(job_id: str, request: schemas.VariantsRequest):
    job = _job(runner, job_id)
    if job.state != jobs_lib.DONE:
      raise ApiError(409, f'Job {job_id} is {job.state}'
                     f'{": " + job.error if job.error else ""}; variants need a finished job.')
    images, attributes = engine.variants(job.result['inversion'], request.attributes,
                                         request.sweep)
    return {'variants': [{'attributes': a, 'image': encoding.data_url(im)}
                         for a, im in zip(attributes, images)]}

  return app


def inversion_runner(engine: Engine, max_waiting: int = 2, max_kept: int = 8,
                     timeout_s: float = 300.0) -> jobs_lib.JobRunner:
  """The background runner of photo inversions on `engine`."""
  return jobs_lib.JobRunner(lambda payload, progress: _invert(engine, payload, progress),
                            max_waiting, max_kept, timeout_s,
                            explain=lambda e: str(e) if isinstance(e, InputError) else None)


def _invert(engine: Engine, payload: dict, progress) -> dict:
  result = engine.invert(payload['photo'], payload['known'], progress)
  return {'inversion': result, 'json': {
      'photo': encoding.data_url(payload['photo']),
      'reconstruction': encoding.data_url(encoding.to_uint8(result.reconstruction)),
      'psnr': round(result.psnr, 2), 'initial_psnr': round(result.initial_psnr, 2),
      'attributes': result.attributes, 'known': payload['known']}}


def _job(runner: jobs_lib.JobRunner, job_id: str) -> jobs_lib.Job:
  try:
    return runner.get(job_id)
  except KeyError as e:
    raise ApiError(404, e.args[0]) from e


def _job_json(job: jobs_lib.Job) -> dict:
  return {'job': job.id, 'state': job.state, 'progress': round(job.progress, 3),
          'elapsed_s': round(job.elapsed(), 2), 'error': job.error,
          'result': job.result['json'] if job.state == jobs_lib.DONE else None}
