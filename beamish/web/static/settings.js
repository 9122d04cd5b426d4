// The settings page: the user's LLM configuration, edited through the HTTP API (the web
// app passes these calls on with the session cookie's token), and beside it what each task
// type resolves to now and which layer supplied each value.

import { apiClient } from "./api.js";

const root = document.getElementById("settings");
const user = root.dataset.user;
const base = root.dataset.api;
const errorBox = document.getElementById("settings-error");
const okBox = document.getElementById("settings-ok");
const current = document.getElementById("current");
const preview = document.getElementById("preview");

const api = apiClient(base);

function say(error, ok = "") {
  errorBox.textContent = error;
  errorBox.hidden = !error;
  okBox.textContent = ok;
}

const userPath = "users/" + encodeURIComponent(user) + "/llm-config";

function parameters(form) {
  const out = {};
  for (const name of ["temperature", "max_tokens", "top_p"]) {
    const raw = form.elements[name].value.trim();
    if (raw === "") continue;
    const number = Number(raw);
    out[name] = Number.isNaN(number) ? raw : number; // the server says what is wrong
  }
  return out;
}

function describeParameters(params) {
  return Object.entries(params || {})
    .filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${v}`).join(", ");
}

function removeButton(label, path) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Remove";
  button.setAttribute("aria-label", "Remove " + label);
  button.addEventListener("click", async () => {
    try {
      await api(path, { method: "DELETE" });
      say("", "Removed " + label + ".");
      await refresh();
    } catch (error) {
      say(error.message);
    }
  });
  return button;
}

function currentItem(label, text, path) {
  const item = document.createElement("li");
  const strong = document.createElement("strong");
  strong.textContent = label + ": ";
  item.append(strong, document.createTextNode(text));
  if (path) item.append(" ", removeButton(label, path));
  return item;
}

function showCurrent(config) {
  const items = [];
  items.push(currentItem("Tier", config.tier || "free", null));
  if (config.default) {
    const d = config.default;
    items.push(currentItem("Default", `${d.provider} / ${d.model} ${describeParameters(d.parameters)}`, null));
    const form = document.getElementById("default-form");
    form.elements.provider.value = d.provider;
    form.elements.model.value = d.model;
  }
  for (const p of config.providers || []) {
    items.push(currentItem("Provider " + p.provider, `${p.model} ${describeParameters(p.parameters)}`,
      userPath + "/providers/" + encodeURIComponent(p.provider)));
  }
  for (const t of config.tasks || []) {
    items.push(currentItem("Task " + t.task_type, `${t.provider} / ${t.model} ${describeParameters(t.parameters)}`,
      userPath + "/tasks/" + encodeURIComponent(t.task_type)));
  }
  current.replaceChildren(...items);
}

function cell(text, source) {
  const td = document.createElement("td");
  td.append(document.createTextNode(text));
  if (source) {
    const tag = document.createElement("span");
    tag.className = "source";
    tag.textContent = source;
    td.append(" ", tag);
  }
  return td;
}

async function showPreview() {
  for (const row of preview.querySelectorAll("tbody tr")) {
    const task = row.dataset.task;
    const header = row.querySelector("th");
    try {
      const view = await api("llm/config/preview?task_type=" + encodeURIComponent(task));
      const params = Object.entries(view.parameters || {})
        .filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0));
      const paramCell = document.createElement("td");
      for (const [k, v] of params) {
        const line = document.createElement("div");
        line.textContent = `${k}=${v}`;
        const tag = document.createElement("span");
        tag.className = "source";
        tag.textContent = view.sources[k] || "";
        line.append(" ", tag);
        paramCell.append(line);
      }
      const warnings = document.createElement("td");
      for (const w of view.warnings || []) {
        const line = document.createElement("div");
        line.textContent = w;
        warnings.append(line);
      }
      row.replaceChildren(header, cell(view.provider, view.sources.provider),
        cell(view.model, view.sources.model), paramCell, warnings);
    } catch (error) {
      row.replaceChildren(header, cell("—"), cell("—"), cell(error.message), cell(""));
    }
  }
}

async function refresh() {
  try {
    showCurrent(await api(userPath));
  } catch (error) {
    say(error.message);
  }
  await showPreview();
}

const savers = {
  default: (form) => api(userPath, {
    method: "PUT",
    body: { provider: form.elements.provider.value, model: form.elements.model.value,
            parameters: parameters(form) },
  }),
  provider: (form) => api(userPath + "/providers/" + encodeURIComponent(form.elements.provider.value), {
    method: "PUT",
    body: { model: form.elements.model.value, parameters: parameters(form) },
  }),
  task: (form) => api(userPath + "/tasks/" + encodeURIComponent(form.elements.task_type.value), {
    method: "PUT",
    body: { provider: form.elements.provider.value, model: form.elements.model.value,
            parameters: parameters(form) },
  }),
};

for (const form of document.querySelectorAll("form[data-kind]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await savers[form.dataset.kind](form);
      say("", "Saved.");
      await refresh();
    } catch (error) {
      say(error.message);
    } finally {
      button.disabled = false;
    }
  });
}

refresh();
