// The web page: translate with POST /v1/translate and draw the attention matrix and the word alignment.
"use strict";

const EXAMPLES = {
  de: "Ein Mann fährt mit dem Fahrrad die Straße entlang.",
  en: "A man rides his bike down the street.",
};
const EOS = "</s>";
const $ = (id) => document.getElementById(id);
let models = [];

function el(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

// "▁Mann" → "Mann"; a piece inside a word (no ▁) is shown with a leading "·" so word boundaries stay visible.
function showPiece(piece) {
  if (piece === EOS) return EOS;
  return piece.startsWith("\u2581") ? piece.slice(1) || "\u2581" : "\u00b7" + piece;
}

function currentModel() {
  return models.find((m) => m.name === $("model").value) || models[0];
}

// With `serve --api-keys` translating needs a key: the page asks for it and remembers it in this browser.
async function loadSettings() {
  const response = await fetch("/frontend/settings");
  const settings = await response.json();
  $("key-control").hidden = !settings.keyRequired;
  $("api-key").value = localStorage.getItem("apiKey") || "";
  $("api-key").addEventListener("change", () => localStorage.setItem("apiKey", $("api-key").value.trim()));
}

async function loadModels() {
  const response = await fetch("/v1/models");
  models = await response.json();
  const select = $("model");
  select.replaceChildren(...models.map((m) => el("option", { value: m.name }, `${m.name} (${m.source} → ${m.target})`)));
  $("model-control").hidden = models.length < 2;
  select.addEventListener("change", describeModel);
  describeModel();
}

function describeModel() {
  const model = currentModel();
  if (!model) return;
  $("beam").value = model.beam_size;
  $("nbest").value = Math.min(3, model.beam_size);
  $("source-label").textContent = `Source text (${model.source})`;
  if (!$("source").value.trim() && EXAMPLES[model.source]) $("source").value = EXAMPLES[model.source];
  const bleu = model.bleu && model.bleu.test !== undefined ? ` · test BLEU ${model.bleu.test.toFixed(2)}` : "";
  const size = model.parameters >= 1e6 ? `${(model.parameters / 1e6).toFixed(1)}M` : `${Math.round(model.parameters / 1e3)}K`;
  $("model-info").textContent = `${model.name}: ${model.source} → ${model.target}, ${size} parameters, ` +
    `${model.attention} attention${bleu}`;
}

async function translate() {
  const text = $("source").value.trim();
  const button = $("translate");
  if (!text || button.disabled) return;  // one request at a time: a slow answer never overwrites a newer one
  const beam = Number($("beam").value) || 1;
  const nBest = Math.min(Number($("nbest").value) || 1, beam);
  const model = currentModel();
  button.disabled = true;
  $("error").hidden = true;
  try {
    const response = await fetch("/v1/translate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ texts: [text], model: model.name, beam, n_best: nBest, attention: true, align: true,
                             constraints: [{ include: terms("include"), avoid: terms("avoid") }],
                             ...(!$("key-control").hidden && { api_key: $("api-key").value.trim() }) }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    show(body.results[0], model);
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
  } finally {
    button.disabled = false;
  }
}

function terms(id) {
  return $(id).value.split(";").map((term) => term.trim()).filter((term) => term);
}

function markPlaced(text, placed) {
  // the translation, with each constraint's phrase where it landed highlighted; the spans count code points
  const chars = Array.from(text);
  const slice = (start, end) => chars.slice(start, end).join("");
  const spans = (placed || []).filter((span) => span).sort((a, b) => a[0] - b[0]);
  const parts = [];
  let at = 0;
  for (const [start, end] of spans) {
    if (start < at) continue;
    parts.push(document.createTextNode(slice(at, start)), el("mark", { title: "a term you asked for" },
                                                             slice(start, end)));
    at = end;
  }
  parts.push(document.createTextNode(slice(at)));
  return parts;
}

function show(result, model) {
  const best = result.translations[0];
  $("output").replaceChildren(...markPlaced(best.text, best.placed));
  $("output").lang = model.target;
  const rows = result.translations.map((t, i) => {
    const row = el("tr", i === 0 ? { class: "best" } : {});
    row.append(el("td", {}, String(i + 1)), el("td", {}, t.text), el("td", { class: "score" }, t.score.toFixed(3)));
    return row;
  });
  $("nbest-list").tBodies[0].replaceChildren(...rows);
  $("nbest-list").hidden = result.translations.length < 2;
  // one heatmap per sentence (a text of one sentence, or an older server, has its attention at the top level)
  const sentences = best.sentences || [{ src_pieces: result.src_pieces, trg_pieces: best.trg_pieces,
                                         attention: best.attention, window: best.window }];
  const source = Array.from(result.source);
  $("heatmaps").replaceChildren(...sentences.map((sentence, k) => {
    const block = el("div", { class: "sentence-attention", "data-sentence": k });
    if (sentences.length > 1) {
      block.append(el("p", { class: "sentence-source" },
                      `Sentence ${k + 1}: ${source.slice(sentence.source[0], sentence.source[1]).join("")}`));
    }
    const focus = el("p", { class: "focus" });
    const table = el("table", { class: "heatmap" });
    const scroll = el("div", { class: "heatmap-scroll" });
    scroll.append(table);
    block.append(focus, scroll);
    drawHeatmap(table, focus, sentence.src_pieces, sentence.trg_pieces, sentence.attention, sentence.window);
    return block;
  }));
  $("window-legend").hidden = !sentences.some((sentence) => sentence.window);
  drawAlignment(result.src_pieces, best.trg_pieces, best.alignment);
  for (const id of ["result", "attention-panel", "alignment-panel"]) $(id).hidden = false;
}

function windowClass(span, row, column) {
  if (!span) return "";
  const centre = span.centres[row];
  if (Math.abs(column - centre) > span.radius) return "";
  return Math.round(centre) === column ? " window centre" : " window";
}

// Rows: output pieces (then </s> when produced); columns: source pieces, then </s>.
// With local attention, `span` gives each row's centre p_t and the half-width D: its cells are marked.
function drawHeatmap(table, focus, srcPieces, trgPieces, weights, span) {
  const columns = [...srcPieces, EOS];
  const head = el("tr");
  head.append(el("th", { class: "corner" }));
  columns.forEach((piece, j) => {
    const th = el("th", { class: "src" + (j >= srcPieces.length ? " eos" : ""), "data-col": j });
    th.append(el("span", {}, showPiece(piece)));
    head.append(th);
  });
  const body = weights.map((row, i) => {
    const piece = i < trgPieces.length ? trgPieces[i] : EOS;
    const tr = el("tr", { class: "trg-row" + (i >= trgPieces.length ? " eos" : ""), "data-row": i });
    tr.append(el("th", { class: "trg", "data-row": i }, showPiece(piece)));
    row.forEach((weight, j) => {
      const td = el("td", { class: "cell" + windowClass(span, i, j), "data-row": i, "data-col": j,
                            title: `${weight.toFixed(3)}` });
      td.style.setProperty("--w", weight.toFixed(4));
      tr.append(td);
    });
    return tr;
  });
  table.replaceChildren(el("thead"), el("tbody"));
  table.tHead.append(head);
  table.tBodies[0].append(...body);
  table.onmouseover = (event) => focusOn(table, focus, event.target.closest("[data-row], [data-col]"), columns,
                                        trgPieces, weights);
  table.onmouseleave = () => clearFocus(table, focus);
  clearFocus(table, focus);
}

function focusOn(table, focus, target, columns, trgPieces, weights) {
  clearFocus(table, focus);
  if (!target) return;
  const label = (i) => (i < trgPieces.length ? showPiece(trgPieces[i]) : EOS);
  if (target.dataset.row !== undefined) {  // an output piece: the source pieces it attends to
    const i = Number(target.dataset.row);
    table.querySelector(`tr[data-row="${i}"]`).classList.add("focus-row");
    const ranked = weights[i].map((w, j) => [w, j]).sort((a, b) => b[0] - a[0]).slice(0, 4);
    for (const [w, j] of weights[i].map((w, j) => [w, j])) {
      table.querySelector(`th[data-col="${j}"]`).style.setProperty("--w", w.toFixed(4));
      table.querySelector(`th[data-col="${j}"]`).classList.add("weighted");
    }
    focus.replaceChildren(el("b", {}, label(i)), document.createTextNode(" attends to "),
      ...ranked.flatMap(([w, j], k) => [el("span", { class: "chip" }, `${showPiece(columns[j])} ${w.toFixed(2)}`),
        document.createTextNode(k < ranked.length - 1 ? " " : "")]));
  } else {  // a source piece: the output pieces that attend to it
    const j = Number(target.dataset.col);
    table.querySelectorAll(`[data-col="${j}"]`).forEach((node) => node.classList.add("focus-col"));
    const ranked = weights.map((row, i) => [row[j], i]).sort((a, b) => b[0] - a[0]).slice(0, 4);
    weights.forEach((row, i) => {
      const header = table.querySelector(`th.trg[data-row="${i}"]`);
      header.style.setProperty("--w", row[j].toFixed(4));
      header.classList.add("weighted");
    });
    focus.replaceChildren(el("b", {}, showPiece(columns[j])), document.createTextNode(" is attended by "),
      ...ranked.flatMap(([w, i], k) => [el("span", { class: "chip" }, `${label(i)} ${w.toFixed(2)}`),
        document.createTextNode(k < ranked.length - 1 ? " " : "")]));
  }
}

function clearFocus(table, focus) {
  table.querySelectorAll(".focus-row, .focus-col, .weighted").forEach((node) => {
    node.classList.remove("focus-row", "focus-col", "weighted");
    if (node.tagName === "TH") node.style.removeProperty("--w");
  });
  focus.textContent = "Hover the heatmap to see where each output piece looks.";
}

// Words from pieces: a new word starts at every piece with ▁ (as seq2seq/alignment.py counts them).
function words(pieces) {
  const found = [];
  pieces.forEach((piece, i) => {
    if (piece.startsWith("\u2581") || i === 0) found.push(piece.replace(/^\u2581/, ""));
    else found[found.length - 1] += piece;
  });
  return found;
}

function drawAlignment(srcPieces, trgPieces, pharaoh) {
  const svg = $("alignment");
  const src = words(srcPieces), trg = words(trgPieces);
  const pairs = pharaoh ? pharaoh.split(" ").map((p) => p.split("-").map(Number)) : [];
  $("pharaoh").textContent = pharaoh || "—";
  const gap = 12, charWidth = 8.4, top = 24, bottom = 124;
  const place = (list) => {
    let x = 8;
    return list.map((word) => {
      const width = Math.max(24, word.length * charWidth);
      const box = { x, width, middle: x + width / 2 };
      x += width + gap;
      return box;
    });
  };
  const srcBoxes = place(src), trgBoxes = place(trg);
  const width = Math.max(...[...srcBoxes, ...trgBoxes].map((b) => b.x + b.width), 100) + 8;
  svg.setAttribute("viewBox", `0 0 ${width} 150`);
  svg.setAttribute("width", width);
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attributes, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const lines = pairs.filter(([s, t]) => s < src.length && t < trg.length).map(([s, t]) =>
    node("line", { x1: srcBoxes[s].middle, y1: top + 8, x2: trgBoxes[t].middle, y2: bottom - 16,
                   class: "link", "data-src": s, "data-trg": t }));
  const labels = [
    ...src.map((w, s) => node("text", { x: srcBoxes[s].middle, y: top, class: "word src-word", "data-src": s }, w)),
    ...trg.map((w, t) => node("text", { x: trgBoxes[t].middle, y: bottom, class: "word trg-word", "data-trg": t }, w)),
  ];
  svg.replaceChildren(...lines, ...labels);
}

document.addEventListener("DOMContentLoaded", () => {
  $("translate").addEventListener("click", translate);
  $("source").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      translate();
    }
  });
  loadSettings().catch(() => {});  // an older server without settings: no key field
  loadModels().catch((error) => {
    $("error").textContent = `Cannot load the models: ${error.message}`;
    $("error").hidden = false;
  });
});
