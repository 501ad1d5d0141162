// Signs in against /v1/auth/login (the token stays in this tab's sessionStorage), then fetches the
// dashboard document and draws each panel's Plotly figure. Filters fetch the document again.
"use strict";

const audience = document.body.dataset.audience;
const $ = (selector) => document.querySelector(selector);
const TOKEN = "marketlake.access_token";

function show(element, visible) { element.hidden = !visible; }

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN);
  const headers = {"Accept": "application/json", ...(options.headers || {})};
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {...options, headers});
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (response.status === 401) { signOut(); throw new Error("please sign in again"); }
  if (!response.ok) throw new Error(body?.detail || `request failed (${response.status})`);
  return body;
}

function signOut() {
  sessionStorage.removeItem(TOKEN);
  show($("#dashboard"), false);
  show($("#logout"), false);
  show($("#login"), true);
  document.body.dataset.state = "signed-out";
}

async function signIn(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  $("#login-error").textContent = "";
  try {
    const tokens = await api("/v1/auth/login", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({login: form.get("login"), password: form.get("password")}),
    });
    sessionStorage.setItem(TOKEN, tokens.access_token);
    await load();
  } catch (error) {
    $("#login-error").textContent = error.message;
  }
}

async function dashboardPath() {
  if (audience === "platform") return "/v1/dashboards/platform";
  const me = await api("/v1/auth/userinfo");
  const tenant = new URLSearchParams(location.search).get("tenant_id") || me.tenant_id;
  if (!tenant) throw new Error("this page is for sellers: platform admins open /admin/dashboard");
  return `/v1/dashboards/sellers/${tenant}`;
}

function filterQuery() {
  const form = new FormData($("#filters"));
  const query = new URLSearchParams();
  for (const [name, value] of form.entries()) if (value) query.set(name, value);
  return query.toString();
}

function renderKpis(kpis) {
  $("#kpis").replaceChildren(...kpis.map(({label, value}) => {
    const card = document.createElement("div");
    card.className = "kpi";
    card.innerHTML = `<div class="label"></div><div class="value"></div>`;
    card.querySelector(".label").textContent = label;
    card.querySelector(".value").textContent = value;
    return card;
  }));
}

function renderFilters(dashboard) {
  const form = $("#filters");
  form.start.value = dashboard.start || "";
  form.end.value = dashboard.end || "";
  show($("#product-filter"), audience === "seller");
  const select = form.product_id;
  if (select.options.length === 1) {
    for (const product of dashboard.products) select.add(new Option(product.title, product.id));
  }
  select.value = dashboard.product_id || "";
}

async function renderPanels(panels) {
  const container = $("#panels");
  container.replaceChildren();
  const drawn = panels.map((panel) => {
    const section = document.createElement("section");
    section.className = "panel";
    section.dataset.panel = panel.id;
    section.dataset.points = panel.points;
    section.innerHTML = `<h2></h2><div class="chart"></div>`;
    section.querySelector("h2").textContent = panel.title;
    if (!panel.points) {
      const note = document.createElement("p");
      note.className = "empty";
      note.textContent = "No data for these filters yet.";
      section.append(note);
    }
    container.append(section);
    return Plotly.newPlot(section.querySelector(".chart"), panel.figure.data, panel.figure.layout,
                          {responsive: true, displayModeBar: false});
  });
  await Promise.all(drawn);
}

async function load() {
  show($("#login"), false);
  show($("#message"), false);
  document.body.dataset.state = "loading";
  try {
    const query = filterQuery();
    const dashboard = await api(`${await dashboardPath()}${query ? `?${query}` : ""}`);
    $("#title").textContent = dashboard.title;
    $("#freshness").textContent = `Data through ${dashboard.data_through || "–"}, ` +
      `generated ${new Date(dashboard.generated_at).toLocaleString()}`;
    show($("#dashboard"), true);
    show($("#logout"), true);
    renderFilters(dashboard);
    renderKpis(dashboard.kpis);
    await renderPanels(dashboard.panels);
    document.body.dataset.state = "ready";
  } catch (error) {
    if (!sessionStorage.getItem(TOKEN)) return;
    $("#message").textContent = error.message;
    show($("#message"), true);
    document.body.dataset.state = "error";
  }
}

$("#login").addEventListener("submit", signIn);
$("#filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
$("#logout").addEventListener("click", signOut);
if (sessionStorage.getItem(TOKEN)) load(); else signOut();
