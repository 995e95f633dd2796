// productgan studio: the page's behaviour. Plain JavaScript, no libraries (works offline).
// Every server call goes through api(); every failure ends in showError(words).
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  products: [],        // The grid, as /api/generate returned it.
  current: null,       // The open product.
  strengths: [],       // Its slider values.
  editBusy: false,     // A slider request in flight...
  editPending: false,  // ...and a newer slider position waiting for it.
  job: null,           // The photo inversion job id.
};

// ---- Server calls and errors ----

async function api(path, body, options) {
  const init = body === undefined ? {method: 'GET'} : {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)};
  Object.assign(init, options || {});
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new Error('The studio server cannot be reached: is it still running?');
  }
  let data = null;
  try { data = await response.json(); } catch (e) { /* Not JSON: said below. */ }
  if (!response.ok) {
    throw new Error((data && data.error) || `The server answered ${response.status} ${response.statusText}.`);
  }
  return data;
}

function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
}

function clearError() { $('error').hidden = true; }

// Runs an action; its error, whatever it is, is shown on the page in words.
async function guarded(action) {
  try {
    return await action();
  } catch (e) {
    showError(e && e.message ? e.message : String(e));
  }
}

// ---- Small DOM helpers ----

function el(tag, attributes, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key === 'text') node.textContent = value;
    else if (key === 'className') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}

function describe(attributes) {
  return Object.values(attributes || {}).filter((v) => v !== 'any').join(' ');
}

function ref(product) {
  return {seed: product.seed, index: product.index, truncation: product.truncation,
          attributes: product.attributes};
}

function figure(image, caption, onClick) {
  const fig = el('figure', onClick ? {className: 'clickable'} : {}, [
    el('img', {src: image, alt: caption, title: caption}),
    el('figcaption', {text: caption}),
  ]);
  if (onClick) fig.addEventListener('click', onClick);
  return fig;
}

// ---- Controls built from the run's vocabulary ----

function attributeSelect(id, name, values, anyLabel) {
  const select = el('select', {id, 'data-attribute': name},
                    [el('option', {value: 'any', text: anyLabel})]
                      .concat(values.map((v) => el('option', {value: v, text: v}))));
  return el('label', {className: 'field-label'}, [document.createTextNode(name), select]);
}

function buildControls(info) {
  const box = $('attributes');
  box.replaceChildren();
  for (const a of info.attributes) box.appendChild(attributeSelect(`attr-${a.name}`, a.name, a.values, 'any'));
  $('count').max = info.count.max;
  $('truncation').value = info.truncation.default;
  $('truncation-value').textContent = Number(info.truncation.default).toFixed(2);
  $('run-info').textContent = `${info.workdir.split('/').filter(Boolean).pop()} · step ${info.step} ` +
    `(${info.checkpoint} checkpoint) · ${info.resolution} px · ${info.attributes.length} attributes`;

  const sliders = $('sliders');
  sliders.replaceChildren();
  info.directions.forEach((d, i) => {
    const value = el('output', {id: `slider-value-${i}`, text: '0.0'});
    const input = el('input', {type: 'range', id: `slider-${i}`, min: -info.slider_range,
                               max: info.slider_range, step: 0.1, value: 0,
                               'aria-label': `edit direction ${i + 1}`});
    input.addEventListener('input', () => {
      state.strengths[i] = Number(input.value);
      value.textContent = Number(input.value).toFixed(1);
      requestEdit();
    });
    sliders.appendChild(el('div', {}, [
      el('label', {}, [document.createTextNode(`direction ${i + 1}`), value]), input]));
  });

  const sweep = $('sweep-attribute');
  sweep.replaceChildren(...info.attributes.map((a) => el('option', {value: a.name, text: a.name})));
  const variantSweep = $('variant-sweep');
  variantSweep.replaceChildren(el('option', {value: '', text: '(none)'}),
    ...info.attributes.map((a) => el('option', {value: a.name, text: a.name})));
  const variants = $('variant-controls');
  variants.replaceChildren(...info.attributes.map(
    (a) => attributeSelect(`variant-${a.name}`, a.name, a.values, 'as found')));
  // Colour (the second attribute of a catalogue) is the natural first sweep.
  const preferred = info.attributes.length > 1 ? info.attributes[1].name : (info.attributes[0] || {}).name;
  if (preferred) { sweep.value = preferred; variantSweep.value = preferred; }
}

function chosenAttributes(prefix) {
  const out = {};
  for (const select of document.querySelectorAll(`select[data-attribute][id^="${prefix}"]`)) {
    if (select.value !== 'any') out[select.dataset.attribute] = select.value;
  }
  return out;
}

// ---- The text box: a description fills the attribute controls ----

let parseTimer = null;
let parseSerial = 0;

async function parsePrompt() {
  const text = $('prompt').value.trim();
  const serial = ++parseSerial;
  if (!text) { $('prompt-notes').replaceChildren(); return; }
  const parsed = await api('/api/parse', {text});
  if (serial !== parseSerial) return;  // A newer text is being read.
  for (const a of state.info.attributes) {
    $(`attr-${a.name}`).value = parsed.assignments[a.name] || 'any';
  }
  const notes = $('prompt-notes');
  notes.replaceChildren();
  const read = Object.entries(parsed.assignments).map(([k, v]) => `${k}=${v}`).join(', ');
  if (read) notes.appendChild(el('span', {text: `Read as ${read}. `}));
  if (parsed.notes && parsed.notes.length) notes.appendChild(el('span', {text: parsed.notes.join('; ') + '. '}));
  if (parsed.unknown && parsed.unknown.length) {
    notes.appendChild(el('span', {className: 'unknown', id: 'prompt-unknown',
                                  text: `Not understood: ${parsed.unknown.join(', ')}.`}));
  }
}

// ---- Generate and the grid ----

async function generate() {
  clearError();
  const count = Number($('count').value);
  const seed = Number($('seed').value);
  const button = $('generate');
  button.disabled = true;
  try {
    const data = await api('/api/generate', {
      attributes: chosenAttributes('attr-'), seed, count, truncation: Number($('truncation').value)});
    state.products = data.products;
    renderGrid();
    $('grid-note').textContent = `seed ${seed} · ${data.products.length} products · ${data.ms} ms`;
  } finally {
    button.disabled = false;
  }
}

function renderGrid() {
  const grid = $('grid');
  grid.replaceChildren(...state.products.map((p, i) => {
    const caption = describe(p.attributes) || `#${i + 1}`;
    const card = el('button', {type: 'button', className: 'product', 'data-index': i, title: caption}, [
      el('img', {src: p.image, alt: caption}), el('span', {text: caption})]);
    card.addEventListener('click', () => guarded(() => openProduct(p)));
    return card;
  }));
  const target = $('interp-target');
  target.replaceChildren(el('option', {value: '', text: 'choose a product'}),
    ...state.products.map((p, i) => el('option', {value: i, text: `#${i + 1} ${describe(p.attributes)}`})));
}

// ---- One product: sweep, sliders, interpolation, download ----

function setDetailImage(src) {
  $('detail-image').src = src;
  const p = state.current;
  $('download').href = src;
  $('download').download = `product-seed${p.seed}-${p.index}-${describe(p.attributes).replace(/\s+/g, '-') || 'any'}.png`;
}

async function openProduct(product) {
  clearError();
  state.current = product;
  state.strengths = state.info.directions.map(() => 0);
  document.querySelectorAll('#sliders input').forEach((s, i) => {
    s.value = 0; $(`slider-value-${i}`).textContent = '0.0';
  });
  for (const card of document.querySelectorAll('.product')) {
    card.classList.toggle('selected', state.products[Number(card.dataset.index)] === product);
  }
  $('detail').hidden = false;
  setDetailImage(product.image);
  $('detail-caption').textContent = `${describe(product.attributes)} · seed ${product.seed}, #${product.index + 1}`;
  $('interp-row').replaceChildren();
  $('interp-target').value = '';
  $('detail').scrollIntoView({behavior: 'smooth', block: 'nearest'});
  await loadSweep();
}

async function loadSweep() {
  if (!state.current || !state.info.attributes.length) return;
  const attribute = $('sweep-attribute').value;
  const data = await api('/api/sweep', {product: ref(state.current), attribute});
  $('sweep-row').replaceChildren(...data.products.map((p) =>
    figure(p.image, p.attributes[data.attribute], () => guarded(() => openProduct(p)))));
}

// Slider moves re-render at once; while a request is in flight only the newest position waits.
async function requestEdit() {
  if (!state.current) return;
  if (state.editBusy) { state.editPending = true; return; }
  state.editBusy = true;
  try {
    do {
      state.editPending = false;
      const product = state.current;
      const data = await api('/api/edit', {product: ref(product), strengths: state.strengths.slice()});
      if (product === state.current) setDetailImage(data.image);
    } while (state.editPending);
  } catch (e) {
    showError(e.message);
  } finally {
    state.editBusy = false;
  }
}

async function loadInterpolation() {
  const value = $('interp-target').value;
  if (!state.current || value === '') { $('interp-row').replaceChildren(); return; }
  const data = await api('/api/interpolate', {
    product: ref(state.current), to: ref(state.products[Number(value)]), frames: 8});
  $('interp-row').replaceChildren(...data.images.map((src, i) => figure(src, `${i + 1}/8`)));
}

// ---- A photo: upload, inversion job with progress, variants ----

async function uploadPhoto(file) {
  clearError();
  if (!file) return;
  const limits = state.info.upload;
  if (file.size > limits.max_bytes) {
    throw new Error(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the studio takes photos ` +
                    `up to ${(limits.max_bytes / 1048576).toFixed(1)} MB.`);
  }
  const params = new URLSearchParams();
  if ($('upload-known').checked) {
    for (const [k, v] of Object.entries(chosenAttributes('attr-'))) params.append('known', `${k}=${v}`);
  }
  $('job-status').textContent = `Uploading ${file.name}…`;
  const job = await api(`/api/photos?${params}`, undefined, {
    method: 'POST', headers: {'Content-Type': file.type || 'application/octet-stream'}, body: file});
  state.job = job.job;
  await followJob(job.job);
}

async function followJob(id) {
  const bar = $('job-progress');
  bar.hidden = false;
  try {
    for (;;) {
      const job = await api(`/api/jobs/${id}`);
      if (state.job !== id) return;  // A newer upload took over.
      bar.value = job.progress;
      if (job.state === 'done') {
        $('job-status').textContent = `Inverted in ${job.elapsed_s.toFixed(1)} s.`;
        await showPhotoResult(job.result);
        return;
      }
      if (job.state === 'failed') {
        $('job-status').textContent = 'The inversion failed.';
        throw new Error(job.error);
      }
      $('job-status').textContent = job.state === 'queued' ? 'Waiting for the model…'
        : `Fitting the model to your photo… ${Math.round(job.progress * 100)}%`;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } finally {
    bar.hidden = true;
  }
}

async function showPhotoResult(result) {
  $('photo-result').hidden = false;
  $('photo-image').src = result.photo;
  $('reconstruction-image').src = result.reconstruction;
  $('reconstruction-caption').textContent = `reconstruction · PSNR ${result.psnr.toFixed(1)} dB`;
  const found = describe(result.attributes);
  $('photo-found').textContent = found ? `The model reads it as: ${found}.` : '';
  $('photo-result').scrollIntoView({behavior: 'smooth', block: 'nearest'});
  await renderVariants();
}

async function renderVariants() {
  if (!state.job) return;
  const sweep = $('variant-sweep').value || null;
  const data = await api(`/api/jobs/${state.job}/variants`, {attributes: chosenAttributes('variant-'), sweep});
  $('variants').replaceChildren(...data.variants.map((v) =>
    figure(v.image, sweep ? v.attributes[sweep] : describe(v.attributes))));
}

// ---- Wiring ----

function wire() {
  $('error-close').addEventListener('click', clearError);
  $('generate').addEventListener('click', () => guarded(generate));
  $('prompt').addEventListener('input', () => {
    clearTimeout(parseTimer);
    parseTimer = setTimeout(() => guarded(parsePrompt), 250);
  });
  $('prompt').addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    clearTimeout(parseTimer);
    guarded(async () => { await parsePrompt(); await generate(); });
  });
  $('new-seed').addEventListener('click', () => {
    $('seed').value = Math.floor(Math.random() * 1000000);
    guarded(generate);
  });
  $('truncation').addEventListener('input', () => {
    $('truncation-value').textContent = Number($('truncation').value).toFixed(2);
  });
  $('detail-close').addEventListener('click', () => { $('detail').hidden = true; state.current = null; });
  $('photo-close').addEventListener('click', () => { $('photo-result').hidden = true; });
  $('sweep-attribute').addEventListener('change', () => guarded(loadSweep));
  $('interp-target').addEventListener('change', () => guarded(loadInterpolation));
  $('sliders-reset').addEventListener('click', () => {
    document.querySelectorAll('#sliders input').forEach((s, i) => {
      s.value = 0; $(`slider-value-${i}`).textContent = '0.0';
    });
    state.strengths = state.strengths.map(() => 0);
    requestEdit();
  });
  $('render-variants').addEventListener('click', () => guarded(renderVariants));
  $('variant-sweep').addEventListener('change', () => guarded(renderVariants));

  const drop = $('dropzone');
  drop.addEventListener('click', (event) => { if (event.target === drop || event.target.tagName === 'P') $('photo-input').click(); });
  drop.addEventListener('keydown', (event) => { if (event.key === 'Enter' || event.key === ' ') $('photo-input').click(); });
  for (const name of ['dragenter', 'dragover']) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add('over'); });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    guarded(() => uploadPhoto(event.dataTransfer.files[0]));
  });
  $('photo-input').addEventListener('change', () => {
    const file = $('photo-input').files[0];
    $('photo-input').value = '';  // The same file again is a new upload.
    guarded(() => uploadPhoto(file));
  });
}

async function start() {
  wire();
  state.info = await api('/api/info');
  buildControls(state.info);
  document.body.dataset.ready = 'true';
  await generate();
}

document.addEventListener('DOMContentLoaded', () => guarded(start));
