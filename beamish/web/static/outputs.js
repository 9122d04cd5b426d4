// The outputs pages: follow unfinished outputs live. Each element with data-status-url
// (a row of the list, the answer section of one output) whose data-status is pending or
// processing is asked for its status once a second, while the tab is visible; a row's
// cells follow the answer, and one output's parts marked data-refresh (its answer, its
// feedback form) are replaced by the server's newer rendering of them (fetched, parsed,
// swapped in: no reload, and no script of the page's content ever runs). Polling stops
// when nothing is unfinished.

const UNFINISHED = new Set(["pending", "processing"]);
const INTERVAL_MS = 1000;
let timer = null;

function following() {
  return [...document.querySelectorAll("[data-status-url]")]
    .filter((el) => UNFINISHED.has(el.dataset.status));
}

async function statusOf(el) {
  const response = await fetch(el.dataset.statusUrl, { credentials: "same-origin",
                                                       cache: "no-store" });
  if (!response.ok) return null;
  return response.json();
}

function setField(el, name, text) {
  const field = el.querySelector(`[data-field="${name}"]`);
  if (field) field.textContent = text;
}

async function updateRow(row, view) {
  setField(row, "status", view.status);
  setField(row, "model", view.model);
  setField(row, "latency", view.latency);
  row.dataset.status = view.status;
}

async function updateSection(section, view) {
  const response = await fetch(section.dataset.pageUrl, { credentials: "same-origin",
                                                          cache: "no-store" });
  if (!response.ok) return;
  const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
  if (!parsed.getElementById(section.id)) {
    setField(section, "status", view.status);
    section.dataset.status = view.status;
    return;
  }
  // The answer and every other part the page marks data-refresh (the feedback form, offered
  // once the answer has completed) are swapped for their newer rendering.
  for (const el of document.querySelectorAll("[data-refresh][id]")) {
    const fresh = parsed.getElementById(el.id);
    if (fresh) el.replaceWith(document.importNode(fresh, true));
  }
}

async function poll() {
  timer = null;
  for (const el of following()) {
    try {
      const view = await statusOf(el);
      if (view === null || view.status === el.dataset.status) continue;
      if (el.dataset.pageUrl) await updateSection(el, view);
      else await updateRow(el, view);
    } catch {
      // A failed poll (the server restarting, say) is tried again at the next tick.
    }
  }
  schedule();
}

function schedule() {
  if (timer !== null || document.hidden || following().length === 0) return;
  timer = setTimeout(poll, INTERVAL_MS);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden && timer !== null) {
    clearTimeout(timer);
    timer = null;
  }
  schedule();
});

schedule();
