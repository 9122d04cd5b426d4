// The admin console's forms and lists: providers, configs, templates and tiers, through the
// web app's proxy (/web-api/admin/... reaches the admin API for admin principals only). The
// API's own error messages are shown as they come.

import { apiClient } from "./api.js";

const root = document.getElementById("admin");
const base = root.dataset.api;
const errorBox = document.getElementById("admin-error");
const okBox = document.getElementById("admin-ok");

const api = apiClient(base);

function say(error, ok = "") {
  errorBox.textContent = error;
  errorBox.hidden = !error;
  okBox.textContent = ok;
}

function el(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((cell, index) => {
    const td = el(index === 0 ? "th" : "td");
    if (index === 0) td.setAttribute("scope", "row");
    td.append(...(Array.isArray(cell) ? cell : [cell ?? ""]));
    tr.append(td);
  });
  return tr;
}

function button(label, name, action) {
  const b = el("button", label, { type: "button", "aria-label": name });
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await action();
    } catch (error) {
      say(error.message);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await action();
    } catch (error) {
      say(error.message);
    } finally {
      submit.disabled = false;
    }
  });
}

function describe(params) {
  return Object.entries(params || {})
    .filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${v}`).join(", ");
}

function numbers(form) {
  const out = {};
  for (const name of ["temperature", "max_tokens", "top_p"]) {
    const raw = form.elements[name].value.trim();
    if (raw === "") continue;
    const number = Number(raw);
    out[name] = Number.isNaN(number) ? raw : number; // the server says what is wrong
  }
  return out;
}

const enc = encodeURIComponent;

// --- providers ------------------------------------------------------------------------

async function providers() {
  const table = document.querySelector("#providers tbody");
  const result = document.getElementById("provider-result");
  const form = document.getElementById("provider-add");

  function show(title, lines) {
    result.replaceChildren(el("h3", title), ...lines.map((line) => el("p", line)));
  }

  async function refresh() {
    const data = await api("admin/providers");
    table.replaceChildren(...data.providers.map((p) => {
      const state = p.problem ? `not serving: ${p.problem}` : (p.serving ? "serving" : (p.enabled ? "not serving" : "disabled"));
      const validated = p.validated_at ? `; validated ${p.validated_at.slice(0, 19).replace("T", " ")}` : "";
      return row([p.name, p.kind, p.base_url || "—", p.api_key_masked || (p.has_api_key ? "set" : "none"),
        state + validated, [
          button("Validate", "Validate " + p.name, async () => {
            const v = await api("admin/providers/" + enc(p.name) + "/validate", { method: "POST" });
            show(`Validation of ${p.name}: ${v.status}`, [v.detail, v.models === null ? "" : `${v.models} models stored`]);
            say("", `Validated ${p.name}: ${v.status}.`);
            await refresh();
          }), " ",
          button("Models", "Models of " + p.name, async () => {
            const m = await api("llm/models");
            const mine = m.models.filter((x) => x.provider === p.name).map((x) => x.model);
            show(`Models of ${p.name}`, mine.length ? mine : ["none discovered yet: validate it"]);
          }), " ",
          button("Remove", "Remove " + p.name, async () => {
            await api("admin/providers/" + enc(p.name), { method: "DELETE" });
            say("", `Removed ${p.name}.`);
            await refresh();
          }),
        ]]);
    }));
    if (!data.providers.length) table.replaceChildren(row(["No providers registered.", "", "", "", "", ""]));
  }

  onSubmit(form, async () => {
    const f = form.elements;
    const body = { name: f.name.value.trim(), kind: f.kind.value, enabled: f.enabled.checked };
    if (f.base_url.value.trim()) body.base_url = f.base_url.value.trim();
    if (f.api_key.value) body.api_key = f.api_key.value;
    const added = await api("admin/providers", { method: "POST", body });
    form.reset(); // the key leaves the page with the form's values
    say("", `Added ${added.name}.`);
    await refresh();
  });
  await refresh();
}

// --- configs --------------------------------------------------------------------------

async function configs() {
  const table = document.querySelector("#configs tbody");
  const form = document.getElementById("config-form");
  const report = document.getElementById("config-report");

  async function refresh() {
    const data = await api("admin/llm/global");
    table.replaceChildren(...data.configs.map((c) => {
      const tier = c.tier === "*" ? "" : "?tier=" + enc(c.tier);
      const name = `${c.task_type} ${c.tier}`;
      return row([c.task_type, c.tier, `${c.provider} / ${c.model}`, describe(c.parameters),
        c.template ? `${c.template} (${c.template_label || "production"})` : "—",
        button("Remove", "Remove config " + name, async () => {
          await api("admin/llm/global/" + enc(c.task_type) + tier, { method: "DELETE" });
          say("", `Removed the config of ${name}.`);
          await refresh();
        })]);
    }));
    if (!data.configs.length) table.replaceChildren(row(["No global configs: the system default serves.", "", "", "", "", ""]));
  }

  onSubmit(form, async () => {
    const f = form.elements;
    const body = { provider: f.provider.value, model: f.model.value.trim(), parameters: numbers(form) };
    if (f.template.value.trim()) body.template = f.template.value.trim();
    if (f.template_label.value.trim()) body.template_label = f.template_label.value.trim();
    const tier = f.tier.value ? "?tier=" + enc(f.tier.value) : "";
    await api("admin/llm/global/" + enc(f.task_type.value) + tier, { method: "PUT", body });
    say("", "Saved.");
    await refresh();
  });

  document.getElementById("config-check").addEventListener("click", async () => {
    try {
      const v = await api("admin/config/validate", { method: "POST" });
      const lines = v.checks.map((c) => el("li", `${c.task_type} (${c.tier}): ` +
        (c.ok ? `ok, ${c.provider} / ${c.model}` : c.problems.map((p) => p.message).join("; "))));
      report.replaceChildren(el("li", v.ok ? "Every task type and tier is usable." : "Problems found:"), ...lines);
    } catch (error) {
      say(error.message);
    }
  });
  await refresh();
}

// --- templates ------------------------------------------------------------------------

async function templates() {
  const table = document.querySelector("#templates tbody");
  const detail = document.getElementById("template-detail");
  const versions = document.querySelector("#template-versions tbody");
  const labelForm = document.getElementById("label-form");
  const previewForm = document.getElementById("preview-form");
  let current = null;

  function labels(map) {
    return Object.entries(map || {}).map(([label, version]) => `${label} → v${version}`).join(", ") || "—";
  }

  async function open(name) {
    const t = await api("admin/templates/" + enc(name));
    current = t;
    document.getElementById("template-title").textContent = "Template " + t.name;
    const byVersion = {};
    for (const [label, version] of Object.entries(t.labels)) (byVersion[version] ||= []).push(label);
    versions.replaceChildren(...t.versions.map((v) => row([
      "v" + v.version, v.task_type, (byVersion[v.version] || []).join(", ") || "—",
      el("code", v.prompt.length > 120 ? v.prompt.slice(0, 119) + "…" : v.prompt)])));
    const select = labelForm.elements.version;
    select.replaceChildren(...t.versions.map((v) => el("option", "v" + v.version, { value: v.version })));
    const source = previewForm.elements.source;
    const choices = [el("option", "default (production, else latest)", { value: "" })];
    for (const label of Object.keys(t.labels)) choices.push(el("option", "label " + label, { value: "label:" + label }));
    for (const v of t.versions) choices.push(el("option", "version " + v.version, { value: "version:" + v.version }));
    source.replaceChildren(...choices);
    detail.hidden = false;
  }

  async function refresh() {
    const data = await api("admin/templates");
    table.replaceChildren(...data.templates.map((t) => row([t.name, "v" + t.latest_version, labels(t.labels),
      button("Open", "Open template " + t.name, () => open(t.name))])));
    if (!data.templates.length) table.replaceChildren(row(["No templates yet.", "", "", ""]));
  }

  onSubmit(labelForm, async () => {
    const label = labelForm.elements.label.value.trim();
    const version = Number(labelForm.elements.version.value);
    await api(`admin/templates/${enc(current.name)}/labels/${enc(label)}`, { method: "PUT", body: { version } });
    say("", `Moved ${label} of ${current.name} to v${version}.`);
    await refresh();
    await open(current.name);
  });

  onSubmit(previewForm, async () => {
    let variables;
    try {
      variables = JSON.parse(previewForm.elements.variables.value || "{}");
    } catch (error) {
      say("Variables must be a JSON object: " + error.message);
      return;
    }
    const body = { variables };
    const [kind, value] = previewForm.elements.source.value.split(":");
    if (kind === "label") body.label = value;
    if (kind === "version") body.version = Number(value);
    const out = await api(`admin/templates/${enc(current.name)}/preview`, { method: "POST", body });
    const r = out.rendered;
    document.getElementById("preview-meta").textContent =
      `${r.template} v${r.version}${r.label ? " (" + r.label + ")" : ""}, task type ${r.task_type}`;
    document.getElementById("preview-system").textContent = r.system ?? "(none)";
    document.getElementById("preview-prompt").textContent = r.prompt;
    document.getElementById("preview-out").hidden = false;
    say("", "Rendered.");
  });
  await refresh();
}

// --- users ----------------------------------------------------------------------------

function users() {
  const form = document.getElementById("tier-form");
  onSubmit(form, async () => {
    const user = form.elements.user_id.value.trim();
    const tier = form.elements.tier.value;
    const profile = await api(`admin/users/${enc(user)}/profile`, { method: "PUT", body: { tier } });
    for (const tr of document.querySelectorAll("#users tbody tr")) {
      if (tr.dataset.user === profile.user_id) tr.querySelector(".tier").textContent = profile.tier;
    }
    say("", `${profile.user_id} is now on tier ${profile.tier}.`);
  });
}

const sections = { providers, configs, templates, users };
const start = sections[root.dataset.section];
if (start) {
  Promise.resolve(start()).catch((error) => say(error.message));
}
