"""A screenshot of the studio in use, taken with headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium):

  python experiments/studio_screenshot.py --workdir=runs/default --out experiments/studio_screenshot.png

Starts `python -m gan.studio` on a free port, types a description, generates, opens a product
(its colour sweep and an interpolation), uploads a generated product's PNG as a photo and waits
for its variants, then saves the whole page.
"""
import argparse
import base64
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark_studio import start_server, stop  # noqa: E402  (same folder)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--checkpoint', default='best')
  parser.add_argument('--out', default='experiments/studio_screenshot.png')
  parser.add_argument('--prompt', default='crimson striped handbag')
  parser.add_argument('--compilation-cache', default=os.path.expanduser('~/.cache/productgan/jax'))
  args = parser.parse_args()

  from selenium import webdriver
  from selenium.webdriver.chrome.options import Options
  from selenium.webdriver.chrome.service import Service
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import Select, WebDriverWait

  proc, host, port, _, lines = start_server(args.workdir, args.checkpoint, args.compilation_cache)
  print('\n'.join(lines))
  options = Options()
  options.binary_location = '/usr/bin/chromium'
  for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
              '--window-size=1400,1000', '--hide-scrollbars'):
    options.add_argument(arg)
  driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=options)
  loaded = lambda selector, n: lambda d: d.execute_script(
      'const i = [...document.querySelectorAll(arguments[0])];'
      'return i.length > 0 && (arguments[1] === null || i.length === arguments[1]) &&'
      ' i.every(x => x.complete && x.naturalWidth > 0)',
      selector, n)
  try:
    wait = WebDriverWait(driver, 300)
    driver.get(f'http://{host}:{port}/')
    wait.until(loaded('#grid img', 16))
    driver.find_element(By.ID, 'prompt').send_keys(args.prompt)
    time.sleep(1.0)
    old = driver.find_element(By.CSS_SELECTOR, '#grid img').get_attribute('src')
    driver.find_element(By.ID, 'generate').click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#grid img').get_attribute('src') != old)
    wait.until(loaded('#grid img', 16))
    driver.find_elements(By.CSS_SELECTOR, '#grid .product')[2].click()
    wait.until(loaded('#sweep-row img', None))
    Select(driver.find_element(By.ID, 'interp-target')).select_by_index(8)
    wait.until(loaded('#interp-row img', 8))
    # A "photo": the first product's PNG, uploaded like a user's file.
    src = driver.find_element(By.CSS_SELECTOR, '#grid img').get_attribute('src')
    photo = os.path.join(tempfile.mkdtemp(), 'photo.png')
    with open(photo, 'wb') as f:
      f.write(base64.b64decode(src.split(',', 1)[1]))
    driver.find_element(By.ID, 'photo-input').send_keys(photo)
    wait.until(loaded('#variants img', None))
    driver.execute_script('window.scrollTo(0, 0)')
    height = driver.execute_script('return document.documentElement.scrollHeight')
    driver.set_window_size(1400, min(height + 20, 2400))
    time.sleep(0.5)
    driver.save_screenshot(args.out)
    print(f'wrote {args.out}')
  finally:
    driver.quit()
    stop(proc)


if __name__ == '__main__':
  main()
