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
// docs/web.md: the viewer module and its glue, gzip -9, what comes before the first frame.
const FIRST_DOWNLOAD_BUDGET = 3.5e6;

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
  // SwiftShader's WebGPU trains on the page's thread, seconds a step: it answers slowly.
  page.setDefaultTimeout(webgpu ? 180000 : 30000);
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
  // The canvas does not move; asked once (a busy page answers layout queries late).
  let box = null;
  const canvasBox = async () => (box = box || (await page.locator('#app').boundingBox()));
  const click = async (mark) => {
    const s = await state();
    const p = s.marks && s.marks[mark];
    if (!p) throw new Error(`nothing drawn as ${mark}; marks: ${Object.keys(s.marks || {}).join(' ')}`);
    const b = await canvasBox();
    await page.mouse.click(b.x + p[0], b.y + p[1]);
  };

  // Navigation to the first frame, three loads (the browser's HTTP cache is off for them, so
  // each one downloads everything again); the median is reported, the last load is tested on.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const loads = [];
  let t0;
  let first;
  for (let i = 0; i < 3; i++) {
    t0 = Date.now();
    await page.goto(`http://127.0.0.1:${port}/`);
    first = await waitState('the first frame', (s) => s.frame >= 1, 120000);
    loads.push(Date.now() - t0);
  }
  const loadMs = [...loads].sort((a, b) => a - b)[1];
  // What was downloaded by then (the resource timing API; the test server sends no encoding).
  const fetchedBeforeFirstFrame = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.responseEnd > 0).map((e) => ({ name: e.name.replace(/^.*\/\/[^/]+/, ''), bytes: e.encodedBodySize })));
  check(first.tab === 'Views' && first.module === 'viewer', `the viewer module renders (${first.frame} frames, tab ${first.tab}, module ${first.module})`);
  const ready = await waitState('the bundled model and gallery', (s) => s.loaded_ms !== null && s.loaded_ms !== undefined, 60000);
  const readyMs = Date.now() - t0;
  console.log(`training device: ${ready.train.device}; first frame ${loadMs} ms, gallery in ${readyMs} ms from navigation`);
  if (!webgpu) {
    await page.waitForFunction(() => /No WebGPU adapter/.test(document.getElementById('notice').textContent), null, { timeout: 10000 });
    check(true, 'the page says training falls back to the CPU');
  } else {
    check(ready.train.offer, 'with a WebGPU adapter the viewer offers the WebGPU training module');
  }
  check(await page.locator('#loading').count() === 0, 'the loading indicator is gone after the first frame');

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
  const r = await waitState('neighbours of image 5', (s) => s.retrieval.query === 5 && s.retrieval.fresh && s.retrieval.neighbours.length === s.retrieval.k);
  const clickMs = r.retrieval_ms;
  check(!r.retrieval.neighbours.some(([i]) => i === 5), `gallery click: ${r.retrieval.neighbours.length} neighbours, query excluded`);
  await page.screenshot({ path: join(out, `${tag}-retrieval-click.png`) });

  // An uploaded file is decoded, converted, embedded and answered.
  await page.setInputFiles('#upload', join(here, 'fixtures', 'trousers.png'));
  const u = await waitState('neighbours of the upload', (s) => s.retrieval.query === 'trousers.png' && s.retrieval.fresh && s.retrieval.neighbours.length === s.retrieval.k);
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
  // t-SNE beside PCA: computed a few iterations a frame, then drawn with the upload placed.
  let tsneMs = null;
  if (!webgpu) {
    const ts = Date.now();
    await click('map:t-SNE');
    const tm = await waitState('the t-SNE map', (s) => s.map.projection === 't-SNE' && s.map.points === 1000 && s.map.photo, 180000);
    tsneMs = Date.now() - ts;
    check(true, `t-SNE of the gallery drawn in ${(tsneMs / 1000).toFixed(1)} s, the upload at ${tm.map.photo.map((v) => v.toFixed(0)).join(', ')}`);
    await page.screenshot({ path: join(out, `${tag}-map-tsne.png`) });
    await click('map:PCA');
    await waitState('PCA again', (s) => s.map.projection === 'PCA' && s.map.points === 1000);
  }

  // Train here. CPU run: from scratch, the gallery's kNN rises above its random-init value and
  // the map moves while it trains; Reset brings the bundled model back. SwiftShader run: the
  // viewer hands the canvas to the WebGPU training module, which trains.
  await click('tab:Training');
  await waitState('the training tab', (s) => s.tab === 'Training' && s.marks['button:train']);
  const want = Number(process.env.LEOCLR_WEB_TRAIN_LOSSES || 3);
  const trainStart = Date.now();
  let tr;
  let watch = null;
  if (!webgpu) {
    await click('check:scratch');
    await waitState('"from scratch" ticked', (s) => s.train.from_scratch);
    await click('button:train');
    tr = await waitState(`${want} losses`, (s) => s.train.losses >= want || s.train.error, 240000 + 2000 * want);
    await click('tab:Map');
    // The map of the random network (the snapshot before the first step), then a later one.
    await waitState('the random-init snapshot on the map', (s) => s.train.knn.length >= 1 || s.train.error, 120000);
    await sleep(300);
    await page.screenshot({ path: join(out, `${tag}-map-training-early.png`) });
    const rises = (s) => s.train.knn.length >= 2 && s.train.knn.slice(1).some(([, v]) => v > s.train.knn[0][1] + 1);
    const k = await waitState('gallery kNN above its random-init value', (s) => rises(s) || s.train.error, 300000);
    await page.screenshot({ path: join(out, `${tag}-map-training.png`) });
    watch = { knn: k.train.knn, map_moved: k.train.map_moved, steps: k.train.steps };
    check(!k.train.error && rises(k), `from scratch, gallery kNN ${k.train.knn.map(([st, v]) => `${v.toFixed(1)}% @${st}`).join(', ')}`);
    check(k.train.map_moved > 0, `the map's points moved (${k.train.map_moved.toFixed(3)} of its spread, summed over snapshots)`);
    check(/^Train here, step/.test(k.model), `Retrieval and the Map use the model being trained (${k.model})`);
    await click('tab:Training');
    await waitState('the training tab', (s) => s.tab === 'Training' && s.marks['button:reset']);
    await sleep(300);
    await page.screenshot({ path: join(out, `${tag}-train.png`) });
    await click('button:reset');
    const back = await waitState('the bundled model back', (s) => s.model === 'model.leoclr' && s.train.knn.length === 0);
    check(!back.train.running, 'Reset stops training and puts the bundled model back');
  } else {
    await click('button:webgpu');
    tr = await waitState(`the WebGPU module and ${want} losses`, (s) => (s.module === 'webgpu' && s.train.losses >= want) || (s.train && s.train.error), 400000 + 2000 * want);
    check(tr.module === 'webgpu' && tr.train.device === 'WebGPU', `the training module took the canvas over (module ${tr.module}, training on ${tr.train.device})`);
  }
  const trainMs = Date.now() - trainStart;
  check(!tr.train.error && tr.train.losses >= want, `train here: ${tr.train.steps} steps, ${tr.train.losses} losses, last ${tr.train.last_loss} on ${tr.train.device}`);
  if (webgpu) {
    await click('button:train'); // pause
    // On SwiftShader's WebGPU a step takes seconds and the queued ones finish first: wait longer
    // for the frame than the default 30 s.
    await page.screenshot({ path: join(out, `${tag}-train.png`), timeout: 180000 });
  }

  // A phone-sized viewport: the page's bar wraps, the app keeps most of the height, and a
  // gallery click's neighbours all lie inside the canvas.
  let phone = null;
  if (!webgpu) {
    const pp = await browser.newPage({ viewport: { width: 390, height: 844 } });
    pp.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    pp.on('pageerror', (e) => errors.push(String(e)));
    await pp.goto(`http://127.0.0.1:${port}/`);
    const pstate = () => pp.evaluate(() => (window.leoclr ? window.leoclr.state() : {}));
    const pwait = async (what, pred) => {
      const t = Date.now();
      while (Date.now() - t < 60000) {
        const s = await pstate();
        if (s && s.frame !== undefined && pred(s)) return s;
        await sleep(100);
      }
      throw new Error(`phone: timed out waiting for ${what}`);
    };
    await pwait('thumbnails', (s) => s.marks && s.marks['thumb:1']);
    // The page's bar wraps to more lines once the notice appears, moving the canvas down: measure
    // the canvas after it, and at each click.
    await pp.waitForFunction(() => /No WebGPU adapter/.test(document.getElementById('notice').textContent), null, { timeout: 10000 });
    const pclick = async (mark) => {
      const b = await pp.locator('#app').boundingBox();
      const p = (await pstate()).marks[mark];
      await pp.mouse.click(b.x + p[0], b.y + p[1]);
    };
    await pclick('tab:Retrieval');
    await pwait('the retrieval grid', (s) => s.tab === 'Retrieval' && s.marks['thumb:5']);
    await pclick('thumb:5');
    const pbox = await pp.locator('#app').boundingBox();
    const ps = await pwait('neighbours', (s) => s.retrieval.query === 5 && s.retrieval.fresh && s.retrieval.neighbours.length === s.retrieval.k && s.marks['neighbour:9']);
    const cut = Object.entries(ps.marks).filter(([k, p]) => k.startsWith('neighbour:') && !(p[0] > 0 && p[0] < pbox.width && p[1] > 0));
    phone = { canvas: [pbox.width, pbox.height], neighbours: ps.retrieval.neighbours.length };
    check(pbox.height > 700 && cut.length === 0, `phone 390x844: canvas ${pbox.width}x${pbox.height}, ${ps.retrieval.neighbours.length} neighbours inside it${cut.length ? ', cut: ' + cut.map(([k]) => k).join(' ') : ''}`);
    await pp.screenshot({ path: join(out, 'phone-retrieval.png') });
    await pp.close();
  }

  check(errors.length === 0, `console clean (${errors.length} errors)${errors.length ? ': ' + errors.slice(0, 5).join(' | ') : ''}`);

  const gz = (f) => gzipSync(readFileSync(f), { level: 9 }).length;
  const viewer = join(root, 'web', 'pkg', 'leoclr_web_bg.wasm');
  const viewerJs = join(root, 'web', 'pkg', 'leoclr_web.js');
  const trainer = join(root, 'web', 'pkg-webgpu', 'leoclr_web_bg.wasm');
  // The size gate: what a visitor downloads before the first frame (the viewer's module and its
  // glue; the page itself is 5 KB), gzip -9, against the budget docs/web.md gives.
  const firstDownloadGzip = gz(viewer) + gz(viewerJs);
  check(firstDownloadGzip <= FIRST_DOWNLOAD_BUDGET, `first download ${(firstDownloadGzip / 1e6).toFixed(2)} MB gzip (budget ${(FIRST_DOWNLOAD_BUDGET / 1e6).toFixed(2)} MB)`);
  const result = {
    backend_for_training: tr.train.device,
    flags: webgpu ? 'webgpu' : 'default',
    viewer_wasm_bytes: statSync(viewer).size,
    viewer_wasm_gzip_bytes: gz(viewer),
    first_download_gzip_bytes: firstDownloadGzip,
    webgpu_wasm_bytes: statSync(trainer).size,
    webgpu_wasm_gzip_bytes: gz(trainer),
    fetched_before_first_frame: fetchedBeforeFirstFrame,
    page_to_first_frame_ms: loadMs,
    page_to_first_frame_ms_each: loads,
    page_to_gallery_ms: readyMs,
    app_first_frame_ms: first.first_frame_ms,
    app_gallery_loaded_ms: ready.loaded_ms,
    retrieval_click_ms: clickMs,
    retrieval_upload_ms: uploadMs,
    train_ms: trainMs,
    tsne_ms: tsneMs,
    train_steps: tr.train.steps,
    watch,
    phone,
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
