"""The studio as a user meets it: the real `python -m gan.studio` process, and headless Chromium
(Debian's chromium + chromium-driver, driven by Selenium) clicking through the page.

The server tests run everywhere; the browser test skips, saying why, only where no Chromium and
chromedriver are installed (.ci/run installs them with apt-get when it can).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, tool_env

CHROMIUM = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))),
                None)
CHROMEDRIVER = shutil.which('chromedriver')
HOST = '127.0.0.2'  # Loopback, but not the default: the server must warn (no authentication).


@pytest.fixture(scope='module')
def server(trained_run_dir, tmp_path_factory):
  """A real studio on the tiny run, on a free port; yields (url, process, its TMPDIR)."""
  tmp = tmp_path_factory.mktemp('studio_tmp')
  env = dict(tool_env(1), TMPDIR=str(tmp))
  out = open(tmp_path_factory.mktemp('studio_log') / 'stderr.txt', 'w+')
  proc = subprocess.Popen(
      [sys.executable, '-m', 'gan.studio', f'--workdir={trained_run_dir}', '--checkpoint',
       'latest', '--host', HOST, '--port', '0', '--invert-steps', '8', '--invert-restarts', '2'],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=out, text=True)
  lines, url = [], None
  deadline = time.monotonic() + 400
  while time.monotonic() < deadline and url is None:
    line = proc.stdout.readline()
    if not line:
      break
    lines.append(line)
    if 'studio ready at ' in line:
      url = line.split('studio ready at ', 1)[1].split()[0]
  if url is None:
    proc.kill()
    out.seek(0)
    pytest.fail(f'the studio did not start:\n{"".join(lines)}\n{out.read()[-4000:]}')
  yield {'url': url, 'proc': proc, 'tmp': str(tmp), 'stdout': ''.join(lines), 'stderr': out}
  if proc.poll() is None:
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
  out.close()


def get_json(url):
  with urllib.request.urlopen(url, timeout=60) as response:
    return json.loads(response.read())


def test_real_server_prints_its_url_warns_and_answers(server):
  assert server['url'].startswith(f'http://{HOST}:') and server['url'].endswith('/')
  assert 'latest checkpoint, step 4, 16 px' in server['stdout']
  assert 'compiled the model programs in' in server['stdout']
  server['stderr'].seek(0)
  warning = server['stderr'].read()
  assert f'listening on {HOST}' in warning and 'no authentication' in warning.lower()
  info = get_json(server['url'] + 'api/info')
  assert info['step'] == 4 and info['startup']['compile_s'] > 0
  # Its temporary folder lives under TMPDIR while it runs.
  assert [n for n in os.listdir(server['tmp']) if n.startswith('productgan-studio-')]


@pytest.fixture(scope='module')
def browser():
  if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip('No headless browser: install Debian\'s chromium and chromium-driver '
                '(apt-get install chromium chromium-driver; .ci/run does this when it can).')
  from selenium import webdriver
  from selenium.webdriver.chrome.options import Options
  from selenium.webdriver.chrome.service import Service
  options = Options()
  options.binary_location = CHROMIUM
  for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
              '--window-size=1400,1000', '--no-first-run', '--disable-extensions'):
    options.add_argument(arg)
  driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
  driver.set_page_load_timeout(120)
  yield driver
  driver.quit()


def _loaded_images(driver, selector):
  """naturalWidth of every image matched, or None while any of them has not loaded."""
  widths = driver.execute_script(
      'return [...document.querySelectorAll(arguments[0])].map(i => i.complete ? i.naturalWidth : 0)',
      selector)
  return widths if widths and all(w > 0 for w in widths) else None


def _error_text(driver):
  return driver.execute_script(
      'return document.getElementById("error").hidden ? "" : '
      'document.getElementById("error-text").textContent')


def test_a_user_generates_edits_and_uploads_in_the_browser(server, browser, tmp_path):
  from selenium.webdriver.common.by import By
  from selenium.webdriver.common.keys import Keys
  from selenium.webdriver.support.ui import Select, WebDriverWait
  driver = browser

  def wait(condition, timeout=120, what=''):
    def check(d):
      error = _error_text(d)
      assert not error, f'the page shows an error while waiting for {what}: {error}'
      return condition(d)
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(check, what)

  driver.get(server['url'])
  wait(lambda d: _loaded_images(d, '#grid img') and len(_loaded_images(d, '#grid img')) == 16,
       what='the first grid')

  # The text box fills the controls, and says which words it could not place.
  driver.find_element(By.ID, 'prompt').send_keys('navy striped handbags qwxz')
  value = lambda name: Select(driver.find_element(By.ID, f'attr-{name}')).first_selected_option \
      .get_attribute('value')
  wait(lambda d: (value('category'), value('colour'), value('pattern'))
       == ('handbag', 'navy', 'striped'), what='the parsed prompt')
  wait(lambda d: 'qwxz' in d.find_element(By.ID, 'prompt-notes').text, what='the unknown word')

  count = driver.find_element(By.ID, 'count')
  count.clear()
  count.send_keys('6')
  old = driver.find_element(By.CSS_SELECTOR, '#grid img').get_attribute('src')
  driver.find_element(By.ID, 'generate').click()
  wait(lambda d: (_loaded_images(d, '#grid img') or []) and len(_loaded_images(d, '#grid img')) == 6
       and d.find_element(By.CSS_SELECTOR, '#grid img').get_attribute('src') != old,
       what='the new grid')
  captions = [c.text for c in driver.find_elements(By.CSS_SELECTOR, '#grid .product span')]
  assert all('handbag navy striped' in c for c in captions), captions

  # Open a product: its sweep, a slider that re-renders, an interpolation.
  driver.find_elements(By.CSS_SELECTOR, '#grid .product')[1].click()
  wait(lambda d: (_loaded_images(d, '#sweep-row img') or []) and
       len(_loaded_images(d, '#sweep-row img')) == 12, what='the colour sweep')
  before = driver.find_element(By.ID, 'detail-image').get_attribute('src')
  assert driver.find_element(By.ID, 'download').get_attribute('href') == before
  driver.find_element(By.ID, 'slider-0').send_keys(Keys.END)  # A real input event: to +3.
  wait(lambda d: d.find_element(By.ID, 'detail-image').get_attribute('src') != before
       and _loaded_images(d, '#detail-image'), what='the edited image')
  assert driver.find_element(By.ID, 'slider-value-0').text == '3.0'
  Select(driver.find_element(By.ID, 'interp-target')).select_by_index(3)
  wait(lambda d: (_loaded_images(d, '#interp-row img') or []) and
       len(_loaded_images(d, '#interp-row img')) == 8, what='the interpolation')

  # Upload a photo: progress, reconstruction with PSNR, variants.
  photo = tmp_path / 'bag.png'
  rng = np.random.default_rng(0)
  Image.fromarray(np.clip(rng.normal(120, 40, (40, 30, 3)), 0, 255).astype(np.uint8)).save(photo)
  driver.find_element(By.ID, 'photo-input').send_keys(str(photo))
  wait(lambda d: (_loaded_images(d, '#variants img') or []) and
       len(_loaded_images(d, '#variants img')) == 12, timeout=300, what='the variants')
  assert 'PSNR' in driver.find_element(By.ID, 'reconstruction-caption').text
  assert _loaded_images(driver, '#photo-image') and _loaded_images(driver, '#reconstruction-image')

  # A bad file dropped on the drop zone: the error is shown in words.
  driver.execute_script('''
      const data = new DataTransfer();
      data.items.add(new File(['not an image'], 'notes.png', {type: 'image/png'}));
      document.getElementById('dropzone').dispatchEvent(
          new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));''')
  WebDriverWait(driver, 60).until(lambda d: _error_text(d), 'the upload error')
  assert 'cannot be used as a photo' in _error_text(driver)
  assert 'Traceback' not in driver.page_source


def test_server_stops_on_ctrl_c_and_removes_its_temp_folder(server):
  proc = server['proc']
  proc.send_signal(signal.SIGINT)
  assert proc.wait(60) == 0
  assert not [n for n in os.listdir(server['tmp']) if n.startswith('productgan-studio-')]
