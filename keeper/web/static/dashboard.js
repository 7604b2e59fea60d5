// The risk dashboard's script: reads the keeper's front-end routes (GET /markets,
// /positions/<id>, /history/<id>, POST /simulate: docs/operations.md, section 5) and draws
// them. Numbers are shown as the API gives them, rounded for display only: USD to cents,
// greeks to 5 significant digits, moves to 0.01 %. Times are UTC. No library, no build.
"use strict";

const DASH = "—";

// ------------------------------------------------------------------ formatting

function usd(x) {
  if (x === null || x === undefined) return DASH;
  if (Math.abs(x) < 0.005) x = 0; // no "-0.00"
  return x.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function sig(x) {
  if (x === null || x === undefined) return DASH;
  if (x === 0) return "0";
  return x.toLocaleString("en-US", { maximumSignificantDigits: 5, useGrouping: false });
}

function pct(x) {
  if (x === null || x === undefined) return DASH;
  return (x * 100).toFixed(2) + " %";
}

function size(x) {
  return x.toLocaleString("en-US", { maximumFractionDigits: 6, useGrouping: false });
}

function utc(seconds, withTime = true) {
  const iso = new Date(seconds * 1000).toISOString();
  return withTime ? iso.slice(0, 19).replace("T", " ") + " UTC" : iso.slice(0, 10);
}

// ------------------------------------------------------------------ DOM helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

// A numeric cell: the displayed text and the field name (for tests); red when the text is
// negative (a value that rounds to zero is not).
function num(field, value, text) {
  const cls = "num" + (text.startsWith("-") ? " neg" : "");
  return el("td", { class: cls, "data-field": field, text });
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function status(text, isError = false) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

async function getJson(path, init) {
  const r = await fetch(path, init);
  const body = await r.json();
  if (!r.ok) throw new Error(`${path}: ${body.error || r.status}`);
  return body;
}

// ------------------------------------------------------------------ markets

let liveInstruments = [];

async function loadMarkets() {
  const m = await getJson("/markets");
  document.getElementById("epoch").textContent =
    `epoch ${m.epoch} · market of ${utc(m.timestamp)} · source ${m.source}`;
  document.getElementById("spots").textContent = m.underlyings
    .map((u) => `${u.symbol} spot ${usd(u.spot)} · perp ${usd(u.perpMark)}`)
    .join("   |   ");
  liveInstruments = m.markets;
  fill(
    document.querySelector("#markets tbody"),
    m.markets.map((r) =>
      el(
        "tr",
        { "data-instrument": r.instrument },
        el("td", { text: r.name }),
        el("td", { text: r.kind }),
        el("td", { text: r.expiry ? utc(r.expiry, false) : DASH }),
        num("mark", r.mark.decimal, usd(r.mark.decimal)),
        num("iv", r.iv, pct(r.iv)),
        num("fundingPerHour", r.fundingPerHour, sig(r.fundingPerHour)),
      ),
    ),
  );
  for (const row of document.querySelectorAll("#legs .leg")) fillInstrumentSelect(row.firstChild);
}

// ------------------------------------------------------------------ account

function card(field, label, text, note = "") {
  return el(
    "div",
    { class: "card" },
    el("span", { class: "label", text: label }),
    el("span", { class: "value", "data-field": field, text }),
    el("span", { class: "note", text: note }),
  );
}

function greekCells(g) {
  if (g === null) return ["delta", "deltaUsd", "gamma", "vega", "theta"].map((f) => num(f, null, DASH));
  return [
    num("delta", g.delta, sig(g.delta)),
    num("deltaUsd", g.deltaUsd, usd(g.deltaUsd)),
    num("gamma", g.gamma, sig(g.gamma)),
    num("vega", g.vega, usd(g.vega)),
    num("theta", g.theta, usd(g.theta)),
  ];
}

function renderSummary(a) {
  const attested = a.attested ? `attested IM ${usd(a.attested.im.decimal)}` : "no leaf yet";
  document.getElementById("summary").replaceChildren(
    card("equity", "equity", usd(a.equity), `cash ${usd(a.cash.decimal)}`),
    card("im", "initial margin", usd(a.im), attested),
    card("mm", "maintenance margin", usd(a.mm), `surplus ${usd(a.mmSurplus)}`),
    card("imUsage", "margin usage (IM / equity)", pct(a.imUsage), `MM / equity ${pct(a.mmUsage)}`),
    card("maxWithdrawableCash", "max withdrawable", usd(a.maxWithdrawableCash), "USD cash now"),
  );
}

function renderPositions(a) {
  const rows = a.positions.map((p) =>
    el(
      "tr",
      { "data-instrument": p.instrument },
      el("td", { text: p.name }),
      num("size", p.size.decimal, size(p.size.decimal)),
      num("entryPrice", p.entryPrice, usd(p.entryPrice)),
      num("mark", p.mark, usd(p.mark)),
      num("unrealizedPnl", p.unrealizedPnl, usd(p.unrealizedPnl)),
      num("realizedPnl", p.realizedPnl, usd(p.realizedPnl)),
      num("fundingPaid", p.fundingPaid, usd(p.fundingPaid)),
      ...greekCells(p.greeks),
    ),
  );
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 12, text: "no positions" })));
  fill(document.querySelector("#positions tbody"), rows);
  fill(
    document.querySelector("#greek-totals tbody"),
    Object.entries(a.greeks).map(([u, g]) =>
      el("tr", { "data-underlying": u }, el("td", { text: u }), ...greekCells(g)),
    ),
  );
}

function liquidationRows(list) {
  return list.map((d) =>
    el(
      "tr",
      { "data-underlying": d.underlying },
      el("td", { text: d.underlying }),
      num("spot", d.spot, usd(d.spot)),
      num("moveDown", d.moveDown, pct(d.moveDown)),
      num("priceDown", d.priceDown, usd(d.priceDown)),
      num("moveUp", d.moveUp, pct(d.moveUp)),
      num("priceUp", d.priceUp, usd(d.priceUp)),
    ),
  );
}

// Cells shaded by the P&L's sign and size against the worst loss of the array.
function renderRiskArray(r) {
  const scale = Math.max(1e-9, ...r.scenarios.map((s) => Math.abs(s.pnl)),
    ...r.scenarios.flatMap((s) => s.pnlByUnderlying.map(Math.abs)));
  const shade = (x) => {
    const a = Math.min(1, Math.abs(x) / scale) * 0.55;
    return x < 0 ? `background: rgba(200, 40, 40, ${a})` : `background: rgba(30, 140, 70, ${a})`;
  };
  const head = el(
    "tr",
    {},
    el("th", { text: "#" }),
    el("th", { text: "scenario" }),
    ...r.underlyings.map((u) => el("th", { class: "num", text: u })),
    el("th", { class: "num", text: "all" }),
  );
  const rows = r.scenarios.map((s) => {
    const cells = s.pnlByUnderlying.map((x, i) => {
      const td = num(`pnl-${r.underlyings[i]}`, x, usd(x));
      td.setAttribute("style", shade(x));
      return td;
    });
    const all = num("pnl", s.pnl, usd(s.pnl));
    all.setAttribute("style", shade(s.pnl));
    return el(
      "tr",
      { "data-scenario": s.index, class: (s.index === r.worst ? "worst" : "") + (s.inMmGrid ? "" : " im-only") },
      el("td", { text: s.index }),
      el("td", { class: "words", text: s.words }),
      ...cells,
      all,
    );
  });
  document.getElementById("risk-array").replaceChildren(
    el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)),
  );
}

// ------------------------------------------------------------------ history chart

const LANES = [
  { label: "trades", events: ["Trade"], color: "#2563eb", shape: "circle" },
  { label: "deposits", events: ["CashDeposited", "Deposited"], color: "#16a34a", shape: "up" },
  { label: "withdrawals", events: ["CashWithdrawn", "Withdrawn"], color: "#d97706", shape: "down" },
  { label: "liquidations", events: ["Liquidated"], color: "#dc2626", shape: "cross" },
  { label: "funding", events: ["FundingApplied"], color: "#7c3aed", shape: "circle" },
];

function describe(e, names) {
  switch (e.event) {
    case "Trade":
      return `${e.side} ${size(e.size.decimal)} ${names[e.instrument] || e.instrument} @ ${usd(e.price.decimal)}`;
    case "CashDeposited":
    case "CashWithdrawn":
      return `${usd(e.amount)} USD`;
    case "Deposited":
    case "Withdrawn":
      return e.symbol === null ? `${e.amountRaw} raw units of ${e.token}` : `${size(e.amount)} ${e.symbol}`;
    case "Liquidated":
      return `by ${e.liquidator}`;
    case "FundingApplied":
      return `${usd(e.payment.decimal)} USD on ${names[e.instrument] || e.instrument}`;
    default:
      return "";
  }
}

function marker(shape, x, y, color) {
  const r = 6;
  if (shape === "circle") return svg("circle", { cx: x, cy: y, r, fill: color });
  if (shape === "cross") {
    return svg("path", {
      d: `M${x - r} ${y - r}L${x + r} ${y + r}M${x - r} ${y + r}L${x + r} ${y - r}`,
      stroke: color, "stroke-width": 3,
    });
  }
  const d = shape === "up" ? -1 : 1;
  return svg("path", { d: `M${x} ${y + d * r}L${x - r} ${y - d * r}L${x + r} ${y - d * r}Z`, fill: color });
}

function renderHistory(h) {
  const names = Object.fromEntries(liveInstruments.map((m) => [m.instrument, m.name]));
  const W = 960, left = 110, right = 20, top = 10, lane = 30;
  const H = top + lane * LANES.length + 40;
  const times = h.events.map((e) => e.time);
  // the events' range, padded by 5 % each side (one event, or none: a minute around it)
  const first = times.length ? Math.min(...times) : 0;
  const last = times.length ? Math.max(...times) : 0;
  const pad = last > first ? 0.05 * (last - first) : 30;
  const t0 = first - pad;
  const span = last - first + 2 * pad;
  const x = (t) => left + ((t - t0) / span) * (W - left - right);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": "account history" });
  LANES.forEach((l, i) => {
    const y = top + lane * i + lane / 2;
    chart.append(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "lane" }));
    chart.append(svg("text", { x: left - 8, y: y + 4, "text-anchor": "end", class: "lane-label" }, l.label));
  });
  const axisY = top + lane * LANES.length + 4;
  chart.append(svg("line", { x1: left, x2: W - right, y1: axisY, y2: axisY, class: "axis" }));
  const ticks = 4;
  for (let k = 0; k <= ticks; k++) {
    const t = t0 + (span * k) / ticks;
    const tx = x(t);
    chart.append(svg("line", { x1: tx, x2: tx, y1: axisY, y2: axisY + 5, class: "axis" }));
    const iso = new Date(t * 1000).toISOString();
    const anchor = k === 0 ? "start" : k === ticks ? "end" : "middle";
    chart.append(svg("text", { x: tx, y: axisY + 18, "text-anchor": anchor, class: "tick" }, iso.slice(0, 10)));
    chart.append(svg("text", { x: tx, y: axisY + 31, "text-anchor": anchor, class: "tick" }, iso.slice(11, 19) + " UTC"));
  }
  for (const e of h.events) {
    const i = LANES.findIndex((l) => l.events.includes(e.event));
    if (i < 0) continue;
    const l = LANES[i];
    const m = marker(l.shape, x(e.time), top + lane * i + lane / 2, l.color);
    m.setAttribute("class", "marker");
    m.setAttribute("data-event", e.event);
    m.append(svg("title", {}, `${utc(e.time)} ${e.event} ${describe(e, names)}`));
    chart.append(m);
  }
  const rows = h.events
    .slice()
    .reverse()
    .map((e) =>
      el(
        "tr",
        { "data-event": e.event },
        el("td", { text: utc(e.time) }),
        el("td", { text: e.event }),
        el("td", { text: describe(e, names) }),
        el("td", { class: "muted", text: `block ${e.block}` }),
      ),
    );
  document.getElementById("history").replaceChildren(
    chart,
    el("div", { class: "scroll short" }, el("table", { id: "events" }, el("tbody", {}, ...rows))),
  );
}

async function loadAccount(id) {
  status(`loading subaccount ${id}…`);
  const section = document.getElementById("account");
  section.removeAttribute("data-loaded");
  try {
    const [a, h] = await Promise.all([getJson(`/positions/${id}`), getJson(`/history/${id}`)]);
    renderSummary(a);
    renderPositions(a);
    fill(document.querySelector("#liquidation tbody"), liquidationRows(a.liquidation));
    renderRiskArray(a.riskArray);
    renderHistory(h);
    section.hidden = false;
    section.setAttribute("data-loaded", id);
    status(`subaccount ${id} · owner ${a.owner} · epoch ${a.epoch}`);
  } catch (err) {
    section.hidden = true;
    status(String(err.message || err), true);
  }
}

// ------------------------------------------------------------------ what-if

function fillInstrumentSelect(select) {
  const keep = select.value;
  select.replaceChildren(
    ...liveInstruments.map((m) => el("option", { value: m.instrument, text: m.name })),
  );
  if (keep) select.value = keep;
}

function addLeg() {
  const select = el("select", { class: "leg-instrument", "aria-label": "instrument" });
  fillInstrumentSelect(select);
  const qty = el("input", { class: "leg-size", "aria-label": "size", inputmode: "decimal", value: "1" });
  const remove = el("button", { type: "button", class: "remove", text: "×", title: "remove leg" });
  const row = el("div", { class: "leg" }, select, qty, remove);
  remove.addEventListener("click", () => row.remove());
  document.getElementById("legs").append(row);
}

function simRow(field, label, before, after, format) {
  const change = before === null || after === null ? null : after - before;
  return el(
    "tr",
    { "data-field": field },
    el("th", { text: label }),
    num("before", before, format(before)),
    num("after", after, format(after)),
    num("change", change, format(change)),
  );
}

async function simulate() {
  const legs = [...document.querySelectorAll("#legs .leg")].map((row) => ({
    instrument: Number(row.querySelector(".leg-instrument").value),
    size: Number(row.querySelector(".leg-size").value),
  }));
  const text = document.getElementById("account-id").value.trim();
  const account = text === "" ? null : Number(text);
  const out = document.getElementById("sim-result");
  out.removeAttribute("data-done");
  try {
    const s = await getJson("/simulate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ account, legs }),
    });
    const b = s.before, a = s.after;
    const margin = el(
      "table",
      { id: "sim-margin" },
      el("thead", {}, el("tr", {}, el("th"), ...["before", "after", "change"].map((t) => el("th", { class: "num", text: t })))),
      el(
        "tbody",
        {},
        simRow("equity", "equity", b.equity, a.equity, usd),
        simRow("im", "initial margin", b.im, a.im, usd),
        simRow("mm", "maintenance margin", b.mm, a.mm, usd),
        simRow("imSurplus", "equity − IM", b.imSurplus, a.imSurplus, usd),
        simRow("imUsage", "IM / equity", b.imUsage, a.imUsage, pct),
      ),
    );
    const byU = (list) => Object.fromEntries(list.map((d) => [d.underlying, d]));
    const lb = byU(b.liquidation), la = byU(a.liquidation);
    const unds = [...new Set([...Object.keys(lb), ...Object.keys(la)])].sort();
    const price = (d, k) => (d ? d[k] : null);
    const liq = el(
      "table",
      { id: "sim-liquidation" },
      el("thead", {}, el("tr", {}, ...["underlying", "price down before", "price down after", "price up before", "price up after"].map((t, i) => el("th", { class: i ? "num" : "", text: t })))),
      el(
        "tbody",
        {},
        ...unds.map((u) =>
          el(
            "tr",
            { "data-underlying": u },
            el("td", { text: u }),
            num("priceDown-before", price(lb[u], "priceDown"), usd(price(lb[u], "priceDown"))),
            num("priceDown-after", price(la[u], "priceDown"), usd(price(la[u], "priceDown"))),
            num("priceUp-before", price(lb[u], "priceUp"), usd(price(lb[u], "priceUp"))),
            num("priceUp-after", price(la[u], "priceUp"), usd(price(la[u], "priceUp"))),
          ),
        ),
      ),
    );
    out.replaceChildren(margin, el("h3", { text: "Liquidation prices" }), liq);
    out.setAttribute("data-done", "1");
  } catch (err) {
    out.replaceChildren(el("p", { class: "error", text: String(err.message || err) }));
    out.setAttribute("data-done", "error");
  }
}

// ------------------------------------------------------------------ start

document.getElementById("load-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = document.getElementById("account-id").value.trim();
  history.replaceState(null, "", `?account=${encodeURIComponent(id)}`);
  loadAccount(id);
});
document.getElementById("add-leg").addEventListener("click", addLeg);
document.getElementById("simulate").addEventListener("click", simulate);

(async () => {
  try {
    await loadMarkets();
  } catch (err) {
    status(String(err.message || err), true);
  }
  addLeg();
  document.body.setAttribute("data-ready", "1");
  const id = new URLSearchParams(location.search).get("account");
  if (id) {
    document.getElementById("account-id").value = id;
    loadAccount(id);
  }
})();
