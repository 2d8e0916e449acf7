// Drives the browser build (web/, built by web/build.sh) in Debian's headless Chromium: the app
// renders; the crops viewer draws its two boxes; a gallery click and an uploaded file each get k
// neighbours; a bad upload gets a message; "Train here" steps with a loss curve; the console stays
// clean. Clicks go to the canvas where the app says it drew each widget (state_json().marks).
// Writes screenshots and timings to tests/web/out/.
//
// Usage: node tests/web/app.test.mjs [--webgpu]
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const out = join(here, 'out');
mkdirSync(out, { recursive: true });
const webgpu = process.argv.includes('--webgpu');
const tag = webgpu ? 'webgpu' : 'default';
const port = 8000 + Math.floor(Math.random() * 1000);
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

const server = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', String(port), '-d', join(root, 'web')], {
  stdio: 'ignore',
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let browser;
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

try {
  await sleep(700);
  const args = [
    '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ];
  if (webgpu) {
    // SwiftShader WebGPU; these flags also make its canvas show up in screenshots.
    args.push('--enable-unsafe-webgpu', '--use-angle=vulkan', '--enable-features=Vulkan', '--use-vulkan=swiftshader');
  }
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));

  const state = () => page.evaluate(() => (window.leoclr ? window.leoclr.state() : {}));
  const waitState = async (what, pred, timeoutMs = 60000) => {
    const t0 = Date.now();
    let s = {};
    while (Date.now() - t0 < timeoutMs) {
      s = await state();
      if (s && s.frame !== undefined && pred(s)) return s;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}; last state: ${JSON.stringify(s).slice(0, 600)}`);
  };
  const canvasBox = async () => (await page.locator('#app').boundingBox());
  const click = async (mark) => {
    const s = await state();
    const p = s.marks && s.marks[mark];
    if (!p) throw new Error(`nothing drawn as ${mark}; marks: ${Object.keys(s.marks || {}).join(' ')}`);
    const b = await canvasBox();
    await page.mouse.click(b.x + p[0], b.y + p[1]);
  };

  const t0 = Date.now();
  await page.goto(`http://127.0.0.1:${port}/`);
  const first = await waitState('the first frame', (s) => s.frame >= 1, 120000);
  const loadMs = Date.now() - t0;
  check(first.tab === 'Views', `app renders (${first.frame} frames, tab ${first.tab})`);
  console.log(`training device: ${first.train_device}`);
  if (first.train_device !== 'WebGPU') {
    await page.waitForFunction(() => /No WebGPU adapter/.test(document.getElementById('notice').textContent), null, { timeout: 10000 });
    check(true, 'the page says training falls back to the CPU');
  }

  // Views: select image 3; the two crop boxes are drawn.
  await waitState('thumbnails', (s) => s.marks && s.marks['thumb:3']);
  await click('thumb:3');
  const v = await waitState('image 3 in the viewer', (s) => s.views.selected === 3 && s.views.boxes.length === 2);
  const inside = v.views.boxes.every(([x, y, w, h]) => x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 28.01 && y + h <= 28.01);
  check(inside, `crops viewer draws 2 boxes inside the image: ${JSON.stringify(v.views.boxes)}`);
  await page.screenshot({ path: join(out, `${tag}-views.png`) });

  // Retrieval: a gallery click.
  await click('tab:Retrieval');
  await waitState('the retrieval grid', (s) => s.tab === 'Retrieval' && s.marks['thumb:5']);
  await click('thumb:5');
  const r = await waitState('neighbours of image 5', (s) => s.retrieval.query === 5 && s.retrieval.neighbours.length === s.retrieval.k);
  const clickMs = r.retrieval_ms;
  check(!r.retrieval.neighbours.some(([i]) => i === 5), `gallery click: ${r.retrieval.neighbours.length} neighbours, query excluded`);
  await page.screenshot({ path: join(out, `${tag}-retrieval-click.png`) });

  // An uploaded file is decoded, converted, embedded and answered.
  await page.setInputFiles('#upload', join(here, 'fixtures', 'trousers.png'));
  const u = await waitState('neighbours of the upload', (s) => s.retrieval.query === 'trousers.png' && s.retrieval.neighbours.length === s.retrieval.k);
  const uploadMs = u.retrieval_ms;
  check(true, `upload: ${u.retrieval.neighbours.length} neighbours (best ${u.retrieval.neighbours[0][1].toFixed(3)})`);
  await page.screenshot({ path: join(out, `${tag}-retrieval-upload.png`) });

  // A bad upload gets a message, not a crash.
  await page.setInputFiles('#upload', join(here, 'fixtures', 'not-an-image.txt'));
  const bad = await waitState('the bad-upload message', (s) => s.notice && s.notice.error);
  check(/cannot use dropped file not-an-image\.txt/.test(bad.notice.text), `bad upload message: ${bad.notice.text}`);
  // A header claiming 100000 x 100000 pixels is refused before any allocation.
  await page.setInputFiles('#upload', join(here, 'fixtures', 'huge.png'));
  const huge = await waitState('the huge-image message', (s) => s.notice && s.notice.error && /huge\.png/.test(s.notice.text));
  check(true, `absurd dimensions message: ${huge.notice.text}`);
  const still = await state();
  check(still.frame > bad.frame - 1 && still.retrieval.query === 'trousers.png', 'app still running, previous query kept');

  // The uploaded photo in Views: its own two crops drawn on it, the three similarities.
  await click('tab:Views');
  const pv = await waitState('the upload in Views', (s) => s.tab === 'Views' && s.views.photo === 'trousers.png' && s.views.boxes.length === 2 && s.views.similarity);
  const [pw, ph] = pv.views.size;
  const inPhoto = pv.views.boxes.every(([x, y, w, h]) => x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= pw + 0.01 && y + h <= ph + 0.01);
  check(inPhoto && pv.views.similarity.length === 3, `upload in Views: 2 boxes inside its ${pw}x${ph} pixels, similarities ${pv.views.similarity.map((v) => v.toFixed(3)).join(' / ')}`);
  await page.screenshot({ path: join(out, `${tag}-views-upload.png`) });

  // Map: the upload is a highlighted point among the gallery's.
  await click('tab:Map');
  const pm = await waitState('the upload on the map', (s) => s.tab === 'Map' && s.map.photo);
  const cb = await canvasBox();
  check(pm.map.photo[0] > 0 && pm.map.photo[1] > 0 && pm.map.photo[0] < cb.width && pm.map.photo[1] < cb.height, `upload on the map at ${pm.map.photo.map((v) => v.toFixed(0)).join(', ')}`);
  await sleep(500);
  await page.screenshot({ path: join(out, `${tag}-map.png`) });

  // Train here: a few steps, the loss arrives.
  await click('tab:Training');
  await waitState('the training tab', (s) => s.tab === 'Training' && s.marks['button:train']);
  const trainStart = Date.now();
  await click('button:train');
  // LEOCLR_WEB_TRAIN_LOSSES=60 trains longer (for the screenshot in the README).
  const want = Number(process.env.LEOCLR_WEB_TRAIN_LOSSES || 3);
  const tr = await waitState(`${want} losses`, (s) => s.train.losses >= want || s.train.error, 240000 + 2000 * want);
  const trainMs = Date.now() - trainStart;
  check(!tr.train.error && tr.train.losses >= want, `train here: ${tr.train.steps} steps, ${tr.train.losses} losses, last ${tr.train.last_loss} on ${tr.train_device}`);
  await click('button:train'); // pause
  // On SwiftShader's WebGPU a step takes seconds and the queued ones finish first: wait longer
  // for the frame than the default 30 s.
  await page.screenshot({ path: join(out, `${tag}-train.png`), timeout: 180000 });

  check(errors.length === 0, `console clean (${errors.length} errors)${errors.length ? ': ' + errors.slice(0, 5).join(' | ') : ''}`);

  const wasm = join(root, 'web', 'pkg', 'leoclr_web_bg.wasm');
  const result = {
    backend_for_training: tr.train_device,
    flags: webgpu ? 'webgpu' : 'default',
    wasm_bytes: statSync(wasm).size,
    wasm_gzip_bytes: gzipSync(readFileSync(wasm), { level: 9 }).length,
    page_to_first_frames_ms: loadMs,
    app_first_frame_ms: first.first_frame_ms,
    retrieval_click_ms: clickMs,
    retrieval_upload_ms: uploadMs,
    train_three_losses_ms: trainMs,
    train_steps: tr.train.steps,
    failures,
  };
  writeFileSync(join(out, `result-${result.flags}.json`), JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result, null, 2));
} catch (e) {
  failures.push(String(e));
  console.log(`FAIL ${e}`);
} finally {
  if (browser) await browser.close();
  server.kill();
}
process.exit(failures.length ? 1 : 0);
