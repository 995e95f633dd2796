"""/docs: the API reference as one plain HTML page, built from the app's OpenAPI schema.

FastAPI's usual /docs loads Swagger UI from a CDN, which an offline machine cannot reach; this page
needs nothing but the server (the machine-readable schema stays at /openapi.json).
"""
import html
import json
from typing import Any, Dict

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} API</title>
<link rel="stylesheet" href="/static/studio.css"></head>
<body class="docs"><main>
<h1>{title}: API</h1>
<p>{description}</p>
<p>Requests and answers are JSON (except the photo upload, whose body is the image file). Images
come back as <code>data:image/png;base64,...</code> URLs. The schema as JSON:
<a href="/openapi.json">/openapi.json</a>. Back to <a href="/">the studio</a>.</p>
{endpoints}
<h2>Shapes</h2>
{schemas}
</main></body></html>
"""


def _type(schema: Dict[str, Any]) -> str:
  if '$ref' in schema:
    name = schema['$ref'].rsplit('/', 1)[-1]
    return f'<a href="#{name}">{name}</a>'
  if 'anyOf' in schema:
    return ' or '.join(_type(s) for s in schema['anyOf'])
  kind = schema.get('type', 'any')
  if kind == 'array':
    return f'list of {_type(schema.get("items", {}))}'
  if kind == 'object' and 'additionalProperties' in schema:
    return f'object of {_type(schema["additionalProperties"])}'
  return html.escape(str(kind))


def _limits(schema: Dict[str, Any]) -> str:
  names = {'minimum': '>=', 'maximum': '<=', 'maxLength': 'at most', 'maxItems': 'at most'}
  parts = [f'{word} {schema[key]}' for key, word in names.items() if key in schema]
  if 'default' in schema:
    parts.append(f'default {json.dumps(schema["default"])}')
  return ', '.join(parts)


def _schema_table(name: str, schema: Dict[str, Any]) -> str:
  required = set(schema.get('required', ()))
  rows = ''.join(
      f'<tr><td><code>{html.escape(field)}</code>{" (required)" if field in required else ""}'
      f'</td><td>{_type(spec)}</td><td>{html.escape(_limits(spec))}</td>'
      f'<td>{html.escape(spec.get("description", ""))}</td></tr>'
      for field, spec in schema.get('properties', {}).items())
  return (f'<h3 id="{html.escape(name)}">{html.escape(name)}</h3>'
          f'<p>{html.escape(schema.get("description", ""))}</p>'
          f'<table><tr><th>field</th><th>type</th><th>limits</th><th></th></tr>{rows}</table>')


def _endpoint(path: str, method: str, op: Dict[str, Any]) -> str:
  parts = [f'<h3><code>{method.upper()} {html.escape(path)}</code></h3>',
           f'<p>{html.escape(op.get("summary", ""))}</p>']
  params = [p for p in op.get('parameters', ())]
  if params:
    parts.append('<p>Parameters: ' + ', '.join(
        f'<code>{html.escape(p["name"])}</code> ({p["in"]}; '
        f'{html.escape(p.get("description", ""))})' for p in params) + '</p>')
  body = op.get('requestBody', {}).get('content', {})
  for media, content in body.items():
    parts.append(f'<p>Body ({html.escape(media)}): {_type(content.get("schema", {}))}</p>')
  return ''.join(parts)


def render(openapi: Dict[str, Any]) -> str:
  info = openapi.get('info', {})
  endpoints = ''.join(_endpoint(path, method, op)
                      for path, methods in openapi.get('paths', {}).items()
                      for method, op in methods.items())
  schemas = ''.join(_schema_table(name, schema) for name, schema in
                    openapi.get('components', {}).get('schemas', {}).items()
                    if 'ValidationError' not in name)
  return PAGE.format(title=html.escape(info.get('title', 'API')),
                     description=html.escape(info.get('description', '')),
                     endpoints=endpoints, schemas=schemas)
