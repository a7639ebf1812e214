// The page of `dlcc serve`: draw or upload a digit, upload an ECG record. No build step.
"use strict";

const DIGITS = "digits";
const ECG = "ecg";

// ---- talking to the API: every refusal is JSON {error, message} ----------------------
async function callApi(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("the server did not answer (" + err.message + "); is `dlcc serve` running?");
  }
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const message = body && body.message ? body.message : response.statusText;
    throw new Error("HTTP " + response.status + ": " + message);
  }
  return body;
}

function showError(id, error) {
  const box = document.getElementById(id);
  if (error) { box.textContent = error.message || String(error); box.hidden = false; }
  else { box.textContent = ""; box.hidden = true; }
}

// ---- the drawing pad ------------------------------------------------------------------
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
let drawing = false;
function clearPad() {
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height);
  document.getElementById("digit-label").textContent = "";
  document.getElementById("digit-bars").innerHTML = "";
}
function at(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}
pad.addEventListener("pointerdown", (e) => {
  drawing = true; const [x, y] = at(e);
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.1, y); ctx.stroke();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return; const [x, y] = at(e); ctx.lineTo(x, y); ctx.stroke();
});
for (const name of ["pointerup", "pointerleave"]) {
  pad.addEventListener(name, () => { if (drawing) { drawing = false; predictDrawing(); } });
}

// MNIST's preprocessing: the ink's bounding box scaled to fit 20x20 (aspect kept), then
// placed in 28x28 so that its centre of mass is at the centre.
function toMnist(canvas) {
  const w = canvas.width, h = canvas.height;
  const data = canvas.getContext("2d").getImageData(0, 0, w, h).data;
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (data[(y * w + x) * 4] > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1, scale = 20 / Math.max(bw, bh);
  const small = document.createElement("canvas"); small.width = 28; small.height = 28;
  const sctx = small.getContext("2d");
  sctx.fillStyle = "#000"; sctx.fillRect(0, 0, 28, 28);
  sctx.imageSmoothingEnabled = true; sctx.imageSmoothingQuality = "high";
  const tw = bw * scale, th = bh * scale;
  sctx.drawImage(canvas, x0, y0, bw, bh, (28 - tw) / 2, (28 - th) / 2, tw, th);
  let pixels = Array.from(sctx.getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0), (v) => v / 255);
  let mass = 0, cx = 0, cy = 0;
  pixels.forEach((v, i) => { mass += v; cx += v * (i % 28); cy += v * Math.floor(i / 28); });
  const dx = Math.round(13.5 - cx / mass), dy = Math.round(13.5 - cy / mass);
  const shifted = new Array(784).fill(0);
  pixels.forEach((v, i) => {
    const x = (i % 28) + dx, y = Math.floor(i / 28) + dy;
    if (x >= 0 && x < 28 && y >= 0 && y < 28) shifted[y * 28 + x] = v;
  });
  const rows = [];
  for (let y = 0; y < 28; y++) rows.push(shifted.slice(y * 28, y * 28 + 28));
  return rows;
}

function showPreview(rows) {
  const preview = document.getElementById("preview").getContext("2d");
  const image = preview.createImageData(28, 28);
  rows.flat().forEach((v, i) => { const g = Math.round(v * 255); image.data.set([g, g, g, 255], i * 4); });
  const tmp = document.createElement("canvas"); tmp.width = 28; tmp.height = 28;
  tmp.getContext("2d").putImageData(image, 0, 0);
  preview.imageSmoothingEnabled = false; preview.drawImage(tmp, 0, 0, 112, 112);
}

function showPrediction(answer) {
  document.getElementById("digit-label").textContent = "Prediction: " + answer.label;
  const bars = document.getElementById("digit-bars");
  bars.innerHTML = "";
  for (const p of answer.probabilities) {
    const row = document.createElement("div");
    row.innerHTML = '<span class="name"></span><span class="bar"></span><span class="value"></span>';
    row.children[0].textContent = p.label;
    row.children[1].style.width = Math.max(1, Math.round(p.probability * 200)) + "px";
    row.children[2].textContent = (100 * p.probability).toFixed(1) + "%";
    bars.appendChild(row);
  }
}

async function predictDrawing() {
  showError("digit-error", null);
  const rows = toMnist(pad);
  if (!rows) { showError("digit-error", new Error("draw a digit first")); return; }
  showPreview(rows);
  try {
    showPrediction(await callApi("/models/" + DIGITS + "/predict", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ input: rows, top_k: 3 }),
    }));
  } catch (err) { showError("digit-error", err); }
}

document.getElementById("predict").addEventListener("click", predictDrawing);
document.getElementById("clear").addEventListener("click", () => { clearPad(); showError("digit-error", null); });
document.getElementById("digit-file").addEventListener("change", async (e) => {
  const file = e.target.files[0]; if (!file) return;
  showError("digit-error", null);
  const form = new FormData(); form.append("file", file); form.append("top_k", "3");
  try { showPrediction(await callApi("/models/" + DIGITS + "/predict", { method: "POST", body: form })); }
  catch (err) { document.getElementById("digit-label").textContent = ""; showError("digit-error", err); }
  e.target.value = "";
});

// ---- ECG ------------------------------------------------------------------------------
function plotEcg(answer) {
  const canvas = document.getElementById("ecg-plot"), g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, signal = answer.display.signal, step = answer.display.step;
  g.clearRect(0, 0, w, h);
  const lo = Math.min(...signal), hi = Math.max(...signal), span = (hi - lo) || 1;
  const x = (i) => (i / (signal.length - 1)) * (w - 10) + 5;
  const y = (v) => h - 10 - ((v - lo) / span) * (h - 20);
  g.strokeStyle = "#234"; g.lineWidth = 1; g.beginPath();
  signal.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v)))); g.stroke();
  g.fillStyle = "#d33";
  for (const beat of answer.beats) {
    const i = Math.min(signal.length - 1, Math.round(beat / step));
    g.beginPath(); g.arc(x(i), y(signal[i]), 4, 0, 2 * Math.PI); g.fill();
  }
  const rate = answer.heart_rate_bpm === null ? "" : ", " + answer.heart_rate_bpm + " bpm";
  document.getElementById("ecg-summary").textContent =
    answer.beats.length + " beats in " + (answer.samples / answer.fs).toFixed(1) + " s" + rate;
}

async function detect(form) {
  showError("ecg-error", null);
  try { plotEcg(await callApi("/models/" + ECG + "/predict", { method: "POST", body: form })); }
  catch (err) { document.getElementById("ecg-summary").textContent = ""; showError("ecg-error", err); }
}
document.getElementById("ecg-example").addEventListener("click", async () => {
  const csv = await (await fetch("/examples/ecg.csv")).blob();
  const form = new FormData(); form.append("file", csv, "example.csv"); detect(form);
});
document.getElementById("ecg-file").addEventListener("change", (e) => {
  const form = new FormData();
  for (const file of e.target.files) form.append("file", file);
  if (e.target.files.length) detect(form);
  e.target.value = "";
});

// Hide what the server does not serve.
callApi("/models").then((body) => {
  const names = body.models.map((m) => m.name);
  if (!names.includes(ECG)) document.getElementById("ecg-section").hidden = true;
  if (!names.includes(DIGITS)) document.getElementById("digits-section").hidden = true;
}).catch((err) => showError("digit-error", err));
clearPad();
